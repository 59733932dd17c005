using System.Buffers;
using System.Numerics;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

/// <summary>
/// An inverted index over payload fields: per field, value → the record keys holding it (equality), and the field's
/// distinct numbers in sorted order (ranges). A <see cref="Filter"/> is evaluated against it into a <see cref="KeyBits"/>
/// once per query, so the list scan's per-candidate test is one bit lookup instead of a payload evaluation.
/// </summary>
/// <remarks>
/// A field is indexed the first time a filter names it (built from the live records under the collection's read
/// lock, O(live records) once), then maintained by the applier on every write. Fields never filtered on cost nothing.
/// Thread safety: <see cref="Added"/> / <see cref="Removed"/> run under the collection's write lock; <see cref="Evaluate"/>
/// under its read lock, from any number of threads (a field's first build and a range's lazy value sort take a
/// private lock).
/// </remarks>
internal sealed class PayloadIndex
{
    private readonly object _build = new();
    private volatile Dictionary<string, FieldIndex> _fields = new(StringComparer.Ordinal); // copy-on-write
    private volatile KeyList? _live; // every live key, built on the first Not

    /// <summary>Fields indexed so far (diagnostics, tests).</summary>
    public int FieldCount => _fields.Count;

    /// <summary>A record became live (caller holds the write lock).</summary>
    public void Added(long key, IReadOnlyDictionary<string, PayloadValue>? payload)
    {
        _live?.Add(key);
        if (payload is null || _fields.Count == 0) return;
        foreach (var (name, field) in _fields)
            if (payload.TryGetValue(name, out var v)) field.Add(key, v);
    }

    /// <summary>A record stopped being live (caller holds the write lock).</summary>
    public void Removed(long key, IReadOnlyDictionary<string, PayloadValue>? payload)
    {
        _live?.Remove(key);
        if (payload is null || _fields.Count == 0) return;
        foreach (var (name, field) in _fields)
            if (payload.TryGetValue(name, out var v)) field.Remove(key, v);
    }

    /// <summary>
    /// The live keys matching <paramref name="filter"/>, as a bit set over keys [0, <paramref name="maxKey"/>]. Caller
    /// holds the read lock and disposes the result. <paramref name="records"/> enumerates the live records, for a
    /// field's first build.
    /// </summary>
    public KeyBits Evaluate(Filter filter, long maxKey, IEnumerable<KeyValuePair<long, IReadOnlyDictionary<string, PayloadValue>?>> records)
    {
        var bits = filter.Accept(new Evaluator(this, maxKey + 1, records));
        bits.CountSet();
        return bits;
    }

    private FieldIndex Field(string name, IEnumerable<KeyValuePair<long, IReadOnlyDictionary<string, PayloadValue>?>> records)
    {
        if (_fields.TryGetValue(name, out var f)) return f;
        lock (_build)
        {
            if (_fields.TryGetValue(name, out f)) return f;
            f = new FieldIndex();
            foreach (var (key, payload) in records)
                if (payload is not null && payload.TryGetValue(name, out var v)) f.Add(key, v);
            f.Normalize();
            _fields = new Dictionary<string, FieldIndex>(_fields, StringComparer.Ordinal) { [name] = f };
            return f;
        }
    }

    private KeyList Live(IEnumerable<KeyValuePair<long, IReadOnlyDictionary<string, PayloadValue>?>> records)
    {
        if (_live is { } l) return l;
        lock (_build)
        {
            if (_live is { } again) return again;
            var all = new KeyList();
            foreach (var (key, _) in records) all.Add(key);
            all.Normalize();
            _live = all;
            return all;
        }
    }

    private sealed class Evaluator(PayloadIndex owner, long limit, IEnumerable<KeyValuePair<long, IReadOnlyDictionary<string, PayloadValue>?>> records)
        : IFilterVisitor<KeyBits>
    {
        public KeyBits In(string field, IReadOnlyList<PayloadValue> values)
        {
            var f = owner.Field(field, records);
            var bits = new KeyBits(limit);
            foreach (var v in values)
                if (f.Values.TryGetValue(v, out var keys)) keys.OrInto(bits);
            return bits;
        }

        public KeyBits Range(string field, double? min, double? max, bool minInclusive, bool maxInclusive)
        {
            var f = owner.Field(field, records);
            var bits = new KeyBits(limit);
            var numbers = f.SortedNumbers();
            int i = 0;
            if (min is double a)
            {
                i = Array.BinarySearch(numbers, a);
                if (i < 0) i = ~i;
                else if (!minInclusive) i++;
            }
            for (; i < numbers.Length; i++)
            {
                double x = numbers[i];
                if (max is double b && (maxInclusive ? x > b : x >= b)) break;
                f.Values[PayloadValue.Number(x)].OrInto(bits);
            }
            return bits;
        }

        public KeyBits And(IReadOnlyList<Filter> filters)
        {
            var acc = filters[0].Accept(this);
            for (int i = 1; i < filters.Count; i++)
            {
                using var next = filters[i].Accept(this);
                acc.And(next);
            }
            return acc;
        }

        public KeyBits Or(IReadOnlyList<Filter> filters)
        {
            var acc = filters[0].Accept(this);
            for (int i = 1; i < filters.Count; i++)
            {
                using var next = filters[i].Accept(this);
                acc.Or(next);
            }
            return acc;
        }

        public KeyBits Not(Filter filter)
        {
            var live = owner.Live(records);
            var bits = new KeyBits(limit);
            live.OrInto(bits);
            using var inner = filter.Accept(this);
            bits.AndNot(inner);
            return bits;
        }
    }

    /// <summary>One field: value → keys; a list value indexes each element (a filter matches any element).</summary>
    private sealed class FieldIndex
    {
        private readonly object _sort = new();
        private volatile double[]? _numbers; // sorted distinct numbers; null when a number was added or dropped since

        public Dictionary<PayloadValue, KeyList> Values { get; } = new();

        public void Add(long key, PayloadValue v)
        {
            if (v.Kind != PayloadKind.List)
            {
                Add1(key, v);
                return;
            }
            foreach (var e in v.AsList) Add1(key, e);
        }

        public void Remove(long key, PayloadValue v)
        {
            if (v.Kind != PayloadKind.List)
            {
                Remove1(key, v);
                return;
            }
            foreach (var e in v.AsList) Remove1(key, e);
        }

        private void Add1(long key, PayloadValue v)
        {
            if (v.Kind == PayloadKind.List) return; // nested lists match no filter
            if (!Values.TryGetValue(v, out var keys))
            {
                Values[v] = keys = new KeyList();
                if (v.Kind == PayloadKind.Number) _numbers = null;
            }
            keys.Add(key);
        }

        private void Remove1(long key, PayloadValue v)
        {
            if (!Values.TryGetValue(v, out var keys)) return;
            keys.Remove(key);
            if (keys.Count > 0) return;
            Values.Remove(v);
            if (v.Kind == PayloadKind.Number) _numbers = null;
        }

        public void Normalize()
        {
            foreach (var keys in Values.Values) keys.Normalize();
        }

        /// <summary>The field's distinct numbers, ascending (rebuilt on first use after a change; readers share it).</summary>
        public double[] SortedNumbers()
        {
            if (_numbers is { } n) return n;
            lock (_sort)
            {
                if (_numbers is { } again) return again;
                var list = new List<double>();
                foreach (var v in Values.Keys)
                    if (v.Kind == PayloadKind.Number) list.Add(v.AsNumber);
                list.Sort();
                return _numbers = list.ToArray();
            }
        }
    }
}

/// <summary>
/// A set of record keys: keys in ascending order (keys are LSNs, so the applier only appends), removal by a mark,
/// compacted once half are marked. 8 bytes and a bit per entry.
/// </summary>
internal sealed class KeyList
{
    private long[] _keys = new long[4];
    private ulong[] _dead = new ulong[1];
    private int _n, _deadCount;
    private bool _sorted = true;

    /// <summary>Keys in the set.</summary>
    public int Count => _n - _deadCount;

    public void Add(long key)
    {
        if (_n > 0 && _keys[_n - 1] >= key)
        {
            if (_keys[_n - 1] == key) return; // a list field holding the value twice
            _sorted = false;                   // a build or recovery that visits keys out of order: sorted by Normalize
        }
        if (_n == _keys.Length)
        {
            Array.Resize(ref _keys, _n * 2);
            Array.Resize(ref _dead, (_keys.Length + 63) >> 6);
        }
        _keys[_n++] = key;
    }

    public void Remove(long key)
    {
        Normalize();
        int i = Array.BinarySearch(_keys, 0, _n, key);
        if (i < 0 || (_dead[i >> 6] & (1UL << i)) != 0) return;
        _dead[i >> 6] |= 1UL << i;
        if (++_deadCount * 2 > _n) Compact();
    }

    /// <summary>Sorts and drops marked and repeated keys (after a build that visited keys in no order).</summary>
    public void Normalize()
    {
        if (_sorted) return;
        Compact();
        Array.Sort(_keys, 0, _n);
        int w = 0;
        for (int r = 0; r < _n; r++)
            if (w == 0 || _keys[r] != _keys[w - 1]) _keys[w++] = _keys[r];
        _n = w;
        _sorted = true;
    }

    private void Compact()
    {
        if (_deadCount == 0) return;
        int w = 0;
        for (int r = 0; r < _n; r++)
            if ((_dead[r >> 6] & (1UL << r)) == 0) _keys[w++] = _keys[r];
        _n = w;
        _deadCount = 0;
        Array.Clear(_dead);
    }

    /// <summary>Sets the bit of every key in the set.</summary>
    public void OrInto(KeyBits bits)
    {
        var words = bits.Words;
        long limit = bits.Limit;
        var keys = _keys;
        for (int i = 0; i < _n; i++)
        {
            long k = keys[i];
            if ((ulong)k >= (ulong)limit) continue;
            if (_deadCount > 0 && (_dead[i >> 6] & (1UL << i)) != 0) continue;
            words[k >> 6] |= 1UL << (int)k;
        }
    }
}

/// <summary>
/// A set of record keys as bits over [0, <see cref="Limit"/>) (pooled; dispose after the search): the payload filter
/// of one query, tested by the index's list scan once per candidate.
/// </summary>
internal sealed class KeyBits : IIdFilter, IDisposable
{
    public KeyBits(long limit)
    {
        Limit = limit;
        int words = checked((int)((limit + 63) >> 6));
        Words = ArrayPool<ulong>.Shared.Rent(Math.Max(words, 1));
        WordCount = words;
        Array.Clear(Words, 0, words);
    }

    public ulong[] Words { get; private set; }

    public int WordCount { get; }

    /// <summary>Keys ≥ this are never in the set.</summary>
    public long Limit { get; }

    /// <summary>Keys in the set (after <see cref="CountSet"/>).</summary>
    public long Count { get; private set; }

    public bool Accept(long id) => (ulong)id < (ulong)Limit && (Words[id >> 6] & (1UL << (int)id)) != 0;

    public void CountSet()
    {
        long c = 0;
        for (int i = 0; i < WordCount; i++) c += BitOperations.PopCount(Words[i]);
        Count = c;
    }

    public void And(KeyBits other)
    {
        for (int i = 0; i < WordCount; i++) Words[i] &= other.Words[i];
    }

    public void Or(KeyBits other)
    {
        for (int i = 0; i < WordCount; i++) Words[i] |= other.Words[i];
    }

    public void AndNot(KeyBits other)
    {
        for (int i = 0; i < WordCount; i++) Words[i] &= ~other.Words[i];
    }

    /// <summary>Appends the keys in the set, ascending.</summary>
    public void CopyKeysTo(List<long> keys)
    {
        for (int i = 0; i < WordCount; i++)
        {
            ulong w = Words[i];
            while (w != 0)
            {
                keys.Add(((long)i << 6) + BitOperations.TrailingZeroCount(w));
                w &= w - 1;
            }
        }
    }

    public void Dispose()
    {
        var w = Words;
        Words = [];
        if (w.Length > 0) ArrayPool<ulong>.Shared.Return(w);
    }
}
