using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

/// <summary>
/// A condition on a record's payload, applied during search. Build with the static factories and combine with
/// <see cref="And"/>, <see cref="Or"/>, <see cref="Not"/> (or the <c>&amp;</c>, <c>|</c>, <c>!</c> operators).
/// A field that is a list matches <see cref="Eq"/>, <see cref="In"/> and <see cref="Range"/> when any element
/// matches. A missing field matches nothing (so <c>Not(Eq(f, v))</c> matches records without <c>f</c>).
/// </summary>
public abstract class Filter
{
    private protected Filter() { }

    /// <summary>True when <paramref name="payload"/> (null = no payload) satisfies the filter.</summary>
    public abstract bool Matches(IReadOnlyDictionary<string, PayloadValue>? payload);

    /// <summary>Walks the filter's structure (to translate it, e.g. into a wire format or another store's query).</summary>
    public abstract T Accept<T>(IFilterVisitor<T> visitor);

    /// <summary>Field equals the value (string, number or bool; a list field matches when any element equals).</summary>
    public static Filter Eq(string field, PayloadValue value)
    {
        CheckField(field);
        ArgumentNullException.ThrowIfNull(value);
        if (value.Kind == PayloadKind.List) throw new ArgumentException("Eq compares with a scalar value; use In for a set.", nameof(value));
        return new InFilter(field, [value]);
    }

    /// <summary>Field equals one of <paramref name="values"/>.</summary>
    public static Filter In(string field, params PayloadValue[] values)
    {
        CheckField(field);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length == 0) throw new ArgumentException("In needs at least one value.", nameof(values));
        foreach (var v in values)
            if (v is null || v.Kind == PayloadKind.List) throw new ArgumentException("In values must be non-null scalars.", nameof(values));
        return new InFilter(field, values);
    }

    /// <summary>
    /// Numeric field within bounds: <c>min ≤ x ≤ max</c> by default; null bound = unbounded; set
    /// <paramref name="minInclusive"/>/<paramref name="maxInclusive"/> false for strict bounds.
    /// </summary>
    public static Filter Range(string field, double? min = null, double? max = null, bool minInclusive = true, bool maxInclusive = true)
    {
        CheckField(field);
        if (min is null && max is null) throw new ArgumentException("Range needs at least one bound.");
        if (min is double a && !double.IsFinite(a) || max is double b && !double.IsFinite(b))
            throw new ArgumentException("Range bounds must be finite.");
        return new RangeFilter(field, min, max, minInclusive, maxInclusive);
    }

    /// <summary>All of the filters.</summary>
    public static Filter And(params Filter[] filters) => new AndFilter(CheckAll(filters));

    /// <summary>Any of the filters.</summary>
    public static Filter Or(params Filter[] filters) => new OrFilter(CheckAll(filters));

    /// <summary>The negation of a filter.</summary>
    public static Filter Not(Filter filter) => new NotFilter(filter ?? throw new ArgumentNullException(nameof(filter)));

    /// <summary>And.</summary>
    public static Filter operator &(Filter a, Filter b) => And(a, b);

    /// <summary>Or.</summary>
    public static Filter operator |(Filter a, Filter b) => Or(a, b);

    /// <summary>Not.</summary>
    public static Filter operator !(Filter a) => Not(a);

    private static void CheckField(string field)
    {
        if (string.IsNullOrEmpty(field)) throw new ArgumentException("A filter needs a field name.", nameof(field));
    }

    private static Filter[] CheckAll(Filter[] filters)
    {
        ArgumentNullException.ThrowIfNull(filters);
        if (filters.Length == 0) throw new ArgumentException("Combine at least one filter.", nameof(filters));
        foreach (var f in filters) ArgumentNullException.ThrowIfNull(f, nameof(filters));
        return (Filter[])filters.Clone();
    }

    private sealed class InFilter(string field, PayloadValue[] values) : Filter
    {
        public override T Accept<T>(IFilterVisitor<T> visitor) => visitor.In(field, values);

        public override bool Matches(IReadOnlyDictionary<string, PayloadValue>? payload)
        {
            if (payload is null || !payload.TryGetValue(field, out var v)) return false;
            if (v.Kind != PayloadKind.List) return Contains(v);
            foreach (var e in v.AsList)
                if (Contains(e)) return true;
            return false;
        }

        private bool Contains(PayloadValue v)
        {
            foreach (var x in values)
                if (x.Equals(v)) return true;
            return false;
        }

        public override string ToString() => values.Length == 1 ? $"{field} == {values[0]}" : $"{field} in ({string.Join(", ", values.Select(v => v.ToString()))})";
    }

    private sealed class RangeFilter(string field, double? min, double? max, bool minInclusive, bool maxInclusive) : Filter
    {
        public override T Accept<T>(IFilterVisitor<T> visitor) => visitor.Range(field, min, max, minInclusive, maxInclusive);

        public override bool Matches(IReadOnlyDictionary<string, PayloadValue>? payload)
        {
            if (payload is null || !payload.TryGetValue(field, out var v)) return false;
            if (v.Kind == PayloadKind.Number) return InRange(v.AsNumber);
            if (v.Kind != PayloadKind.List) return false;
            foreach (var e in v.AsList)
                if (e.Kind == PayloadKind.Number && InRange(e.AsNumber)) return true;
            return false;
        }

        private bool InRange(double x) =>
            (min is not double a || (minInclusive ? x >= a : x > a)) && (max is not double b || (maxInclusive ? x <= b : x < b));

        public override string ToString() =>
            $"{(min is double a ? $"{a} {(minInclusive ? "<=" : "<")} " : "")}{field}{(max is double b ? $" {(maxInclusive ? "<=" : "<")} {b}" : "")}";
    }

    private sealed class AndFilter(Filter[] parts) : Filter
    {
        public override T Accept<T>(IFilterVisitor<T> visitor) => visitor.And(parts);

        public override bool Matches(IReadOnlyDictionary<string, PayloadValue>? payload)
        {
            foreach (var p in parts)
                if (!p.Matches(payload)) return false;
            return true;
        }

        public override string ToString() => "(" + string.Join(" and ", parts.Select(p => p.ToString())) + ")";
    }

    private sealed class OrFilter(Filter[] parts) : Filter
    {
        public override T Accept<T>(IFilterVisitor<T> visitor) => visitor.Or(parts);

        public override bool Matches(IReadOnlyDictionary<string, PayloadValue>? payload)
        {
            foreach (var p in parts)
                if (p.Matches(payload)) return true;
            return false;
        }

        public override string ToString() => "(" + string.Join(" or ", parts.Select(p => p.ToString())) + ")";
    }

    private sealed class NotFilter(Filter inner) : Filter
    {
        public override T Accept<T>(IFilterVisitor<T> visitor) => visitor.Not(inner);

        public override bool Matches(IReadOnlyDictionary<string, PayloadValue>? payload) => !inner.Matches(payload);

        public override string ToString() => $"not {inner}";
    }
}

/// <summary>The cases of a <see cref="Filter"/> (see <see cref="Filter.Accept"/>).</summary>
/// <typeparam name="T">What each case produces.</typeparam>
public interface IFilterVisitor<out T>
{
    /// <summary>Field equals one of <paramref name="values"/> (one value: <see cref="Filter.Eq"/>).</summary>
    T In(string field, IReadOnlyList<PayloadValue> values);

    /// <summary>Numeric field within bounds (null = unbounded).</summary>
    T Range(string field, double? min, double? max, bool minInclusive, bool maxInclusive);

    /// <summary>All of <paramref name="filters"/>.</summary>
    T And(IReadOnlyList<Filter> filters);

    /// <summary>Any of <paramref name="filters"/>.</summary>
    T Or(IReadOnlyList<Filter> filters);

    /// <summary>The negation of <paramref name="filter"/>.</summary>
    T Not(Filter filter);
}
