using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Adanns.Engine.Transforms;

namespace Adanns.Engine.Collections;

/// <summary>
/// What a collection needs from its trained index, over the two kinds it can hold: <see cref="IvfIndex"/> (full
/// vectors resident in the lists) and <see cref="PqIndex"/> (codes resident; full vectors read from the record store).
/// Mutations are serialised by the collection (write lock or applier thread); searches run under its read lock.
/// </summary>
internal abstract class CollectionIndex
{
    public abstract int Count { get; }
    public abstract long TombstoneCount { get; }
    public abstract int NList { get; }

    /// <summary>Rotation of the vectors <see cref="ReadStored"/> returns (queries must be rotated alike); null: caller space.</summary>
    public abstract RotationTransform? StoredRotation { get; }

    /// <summary>File extension of the index snapshot.</summary>
    public abstract string FileExtension { get; }

    /// <summary>Resident bytes per live vector of the searchable index (see the index types).</summary>
    public abstract double ResidentBytesPerVector { get; }

    /// <summary>Resident bytes per live vector of full vectors kept for rerank (0 when they are read from the store).</summary>
    public abstract double RerankBytesPerVector { get; }

    public abstract bool Contains(long key);
    public abstract void Add(ReadOnlySpan<float> vector, long key);
    public abstract bool Remove(long key);
    public abstract void Compact();
    public abstract int[] ListSizes();
    public int DefaultNProbe(SearchParams p, int k) => Resolve(p, k).NProbe;
    public abstract ResolvedSearch Resolve(SearchParams? p, int k);
    public abstract void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, out SearchStats stats);

    /// <summary>The index's batch path: n queries (n×D row-major) on <paramref name="threads"/> threads (0 = all cores).</summary>
    public abstract SearchResults SearchBatch(float[] queries, int k, SearchParams? p, int threads, out SearchStats stats);
    public abstract void Save(string path);

    /// <summary>The stored vectors of live <paramref name="keys"/> (keys.Length × D), in <see cref="StoredRotation"/>'s space.</summary>
    public abstract void ReadStored(ReadOnlySpan<long> keys, Span<float> destination);
}

/// <summary>An IVF index: full (rotated, if the spec says Rot) vectors live in its lists.</summary>
internal sealed class IvfCollectionIndex(IvfIndex index) : CollectionIndex
{
    public IvfIndex Index { get; } = index;
    public override int Count => Index.Count;
    public override long TombstoneCount => Index.TombstoneCount;
    public override int NList => Index.NList;
    public override RotationTransform? StoredRotation => Index.Rotation;
    public override string FileExtension => ".ivf";
    public override double ResidentBytesPerVector => Index.BytesPerVector;
    public override double RerankBytesPerVector => 0; // the lists' full rows are part of the resident index
    public override bool Contains(long key) => Index.Contains(key);
    public override void Add(ReadOnlySpan<float> vector, long key) => Index.Add(vector, key);
    public override bool Remove(long key) => Index.Remove(key);
    public override void Compact() => Index.Compact();
    public override int[] ListSizes() => Index.ListSizes();
    public override ResolvedSearch Resolve(SearchParams? p, int k) => Index.Resolve(p, k);
    public override void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, out SearchStats stats) =>
        Index.Search(query, k, ids, scores, p, filter, out stats);
    public override SearchResults SearchBatch(float[] queries, int k, SearchParams? p, int threads, out SearchStats stats) =>
        Index.SearchBatch(queries, k, p, threads, out stats);
    public override void Save(string path) => Index.Save(path);

    public override void ReadStored(ReadOnlySpan<long> keys, Span<float> destination)
    {
        int D = Index.Dimension;
        for (int i = 0; i < keys.Length; i++)
            if (!Index.TryGetStoredVector(keys[i], destination.Slice(i * D, D)))
                throw new InvalidOperationException($"Key {keys[i]} is not in the index.");
    }
}

/// <summary>A PQ index whose full vectors are read from the collection's record store (larger than memory).</summary>
internal sealed class PqCollectionIndex : CollectionIndex
{
    private readonly RecordVectorSource _source;

    public PqCollectionIndex(PqIndex index, RecordVectorSource source)
    {
        if (!ReferenceEquals(index.VectorSource, source)) index.UseExternalVectors(source);
        Index = index;
        _source = source;
    }

    public PqIndex Index { get; }
    public override int Count => Index.Count;
    public override long TombstoneCount => Index.TombstoneCount;
    public override int NList => Index.NList;
    public override RotationTransform? StoredRotation => null; // the record store holds caller-space vectors
    public override string FileExtension => ".pqx";
    public override double ResidentBytesPerVector => Index.ResidentBytesPerVector;
    public override double RerankBytesPerVector => Index.RerankBytesPerVector;
    public override bool Contains(long key) => Index.Contains(key);
    public override void Add(ReadOnlySpan<float> vector, long key) => Index.Add(vector, key);
    public override bool Remove(long key) => Index.Remove(key);
    public override void Compact() => Index.Compact();
    public override int[] ListSizes() => Index.ListSizes();
    public override ResolvedSearch Resolve(SearchParams? p, int k) => Index.Resolve(p, k);
    public override void Search(ReadOnlySpan<float> query, int k, Span<long> ids, Span<float> scores, SearchParams? p, IIdFilter? filter, out SearchStats stats) =>
        Index.Search(query, k, ids, scores, p, filter, out stats);
    public override SearchResults SearchBatch(float[] queries, int k, SearchParams? p, int threads, out SearchStats stats) =>
        Index.SearchBatch(queries, k, p, threads, out stats);
    public override void Save(string path) => Index.Save(path);
    public override void ReadStored(ReadOnlySpan<long> keys, Span<float> destination) => _source.Read(keys, destination);

    public static PqCollectionIndex Load(string path, RecordVectorSource source) => new(PqIndex.Load(path, source), source);
}

/// <summary>
/// Full vectors by record key, read from the collection's FASTER record store in batches (records on disk go pending
/// and complete together on one session). Thread-safe.
/// </summary>
internal sealed class RecordVectorSource(RecordStore store, int dimension, string what) : IVectorSource
{
    public int Dimension => dimension;

    /// <summary>Record bytes read into pinned scratch without allocation: the vector plus room for id and payload.</summary>
    private int SlotBytes => 4 * dimension + 512;

    public void Read(ReadOnlySpan<long> ids, Span<float> destination)
    {
        if (destination.Length < ids.Length * dimension)
            throw new ArgumentException($"Destination holds {destination.Length} floats; {ids.Length} × {dimension} needed.", nameof(destination));
        var visitor = new VectorVisitor(destination, dimension, default, what);
        int found = store.ReadMany(ids, SlotBytes, ref visitor);
        if (found != ids.Length)
            throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: {ids.Length - found} of {ids.Length} indexed records are missing from the record store.");
    }

    /// <summary>Like <see cref="Read"/>, but a missing key (deleted meanwhile) only clears its flag in <paramref name="found"/>.</summary>
    public int ReadAvailable(ReadOnlySpan<long> keys, Span<float> destination, Span<bool> found)
    {
        found[..keys.Length].Clear();
        var visitor = new VectorVisitor(destination, dimension, found, what);
        return store.ReadMany(keys, SlotBytes, ref visitor);
    }

    private ref struct VectorVisitor : IRecordVisitor
    {
        private readonly Span<float> _destination;
        private readonly Span<bool> _found;
        private readonly int _dimension;
        private readonly string _what;

        public VectorVisitor(Span<float> destination, int dimension, Span<bool> found, string what)
        {
            _destination = destination;
            _dimension = dimension;
            _found = found;
            _what = what;
        }

        public void Visit(int index, ReadOnlySpan<byte> value)
        {
            RecordCodec.DecodeVector(value, _destination.Slice(index * _dimension, _dimension), _what);
            if (!_found.IsEmpty) _found[index] = true;
        }
    }
}
