using System.Globalization;
using Google.Protobuf.Collections;

namespace Adanns.Protocol.V1;

/// <summary>Conversions that make ids easy to write: <c>PointId id = 42UL;</c> or <c>PointId id = "doc-7";</c>.</summary>
public sealed partial class PointId
{
    /// <summary>A numeric id.</summary>
    public static PointId FromNumber(ulong number) => new() { Num = number };

    /// <summary>A string id.</summary>
    public static PointId FromString(string text) => new() { Str = text ?? throw new ArgumentNullException(nameof(text)) };

    /// <summary>A numeric id.</summary>
    public static implicit operator PointId(ulong number) => FromNumber(number);

    /// <summary>A string id.</summary>
    public static implicit operator PointId(string text) => FromString(text);

    /// <summary>The number, or the string in double quotes (as the server prints ids).</summary>
    public string Describe() => KindCase switch
    {
        KindOneofCase.Num => Num.ToString(CultureInfo.InvariantCulture),
        KindOneofCase.Str => $"\"{Str}\"",
        _ => "(none)",
    };
}

/// <summary>Conversions for payload values: <c>Value v = "red";</c>, <c>Value v = 3.5;</c>, <c>Value v = true;</c>.</summary>
public sealed partial class Value
{
    /// <summary>A string value.</summary>
    public static implicit operator Value(string text) => new() { StringValue = text ?? throw new ArgumentNullException(nameof(text)) };

    /// <summary>A number value.</summary>
    public static implicit operator Value(double number) => new() { NumberValue = number };

    /// <summary>A number value.</summary>
    public static implicit operator Value(long number) => new() { NumberValue = number };

    /// <summary>A number value.</summary>
    public static implicit operator Value(int number) => new() { NumberValue = number };

    /// <summary>A bool value.</summary>
    public static implicit operator Value(bool flag) => new() { BoolValue = flag };

    /// <summary>A list of scalar values.</summary>
    public static Value List(params Value[] items)
    {
        var list = new ListValue();
        list.Values.Add(items);
        return new Value { ListValue = list };
    }
}

/// <summary>Filter construction: <c>Filters.Eq("color", "red") &amp; Filters.Range("price", lte: 10)</c>.</summary>
public static class Filters
{
    /// <summary>Field equals a scalar value.</summary>
    public static Filter Eq(string field, Value value) => new() { Equals_ = new FieldEquals { Field = field, Value = value } };

    /// <summary>Field equals one of the values.</summary>
    public static Filter In(string field, params Value[] values)
    {
        var f = new FieldIn { Field = field };
        f.Values.Add(values);
        return new Filter { In = f };
    }

    /// <summary>Numeric bounds; null = unbounded.</summary>
    public static Filter Range(string field, double? gte = null, double? lte = null, double? gt = null, double? lt = null)
    {
        var r = new FieldRange { Field = field };
        if (gte is double a) r.Gte = a;
        if (gt is double b) r.Gt = b;
        if (lte is double c) r.Lte = c;
        if (lt is double d) r.Lt = d;
        return new Filter { Range = r };
    }

    /// <summary>All of the filters.</summary>
    public static Filter And(params Filter[] filters)
    {
        var list = new FilterList();
        list.Filters.Add(filters);
        return new Filter { And = list };
    }

    /// <summary>Any of the filters.</summary>
    public static Filter Or(params Filter[] filters)
    {
        var list = new FilterList();
        list.Filters.Add(filters);
        return new Filter { Or = list };
    }

    /// <summary>The negation.</summary>
    public static Filter Not(Filter filter) => new() { Not = filter };
}

/// <summary>Operators: <c>a &amp; b</c>, <c>a | b</c>, <c>!a</c>.</summary>
public sealed partial class Filter
{
    /// <summary>And.</summary>
    public static Filter operator &(Filter a, Filter b) => Filters.And(a, b);

    /// <summary>Or.</summary>
    public static Filter operator |(Filter a, Filter b) => Filters.Or(a, b);

    /// <summary>Not.</summary>
    public static Filter operator !(Filter a) => Filters.Not(a);
}

/// <summary>Point construction from spans.</summary>
public sealed partial class Point
{
    /// <summary>A point with a copy of <paramref name="vector"/> and an optional payload.</summary>
    public static Point Create(PointId id, ReadOnlySpan<float> vector, IEnumerable<KeyValuePair<string, Value>>? payload = null)
    {
        var p = new Point { Id = id };
        p.Vector.AddFloats(vector);
        if (payload is not null)
            foreach (var (k, v) in payload) p.Payload[k] = v;
        return p;
    }

}

/// <summary>Helpers to fill <c>repeated float</c> fields from spans.</summary>
public static class VectorFields
{
    /// <summary>Appends <paramref name="values"/> to <paramref name="field"/>.</summary>
    public static void AddFloats(this RepeatedField<float> field, ReadOnlySpan<float> values)
    {
        ArgumentNullException.ThrowIfNull(field);
        field.Capacity = Math.Max(field.Capacity, field.Count + values.Length);
        foreach (float x in values) field.Add(x);
    }
}
