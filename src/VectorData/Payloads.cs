using System.Collections;
using System.Globalization;
using Adanns.Engine.Storage;
using V1 = Adanns.Protocol.V1;

namespace Adanns.VectorData;

/// <summary>
/// How record data properties are stored as payload values: strings, bools and numbers as themselves (every
/// number as a double: integers beyond ±2^53 lose precision), Guid, DateTime and DateTimeOffset as invariant
/// round-trip strings, and arrays or lists of those as list values. Null values are not stored.
/// </summary>
internal static class Payloads
{
    /// <summary>
    /// Payload field the provider writes with every record: its key as a string (ulong in decimal, Guid as "D"), so
    /// filters can test keys (<c>r =&gt; r.Key == k</c>, <c>keys.Contains(r.Key)</c>).
    /// </summary>
    public const string KeyField = "_adanns_key";

    /// <summary>
    /// Payload list field the provider writes when data properties are null: their storage names, so a filter can
    /// tell a null (<c>r =&gt; r.Rooms == null</c>) from a value (null values themselves are not stored).
    /// </summary>
    public const string NullsField = "_adanns_null";

    /// <summary>Whether <paramref name="storageName"/> is one of the provider's own payload fields.</summary>
    public static bool IsReserved(string storageName) => storageName.StartsWith("_adanns_", StringComparison.Ordinal);

    /// <summary>A key's text in <see cref="KeyField"/>, or null when <paramref name="key"/> is not a key of <paramref name="keyType"/>.</summary>
    public static string? KeyText(object? key, Type keyType)
    {
        if (keyType == typeof(ulong))
            return key switch
            {
                ulong n => n.ToString(CultureInfo.InvariantCulture),
                _ when TryToNumber(key, out double x) && x >= 0 && x == Math.Floor(x) && x <= ulong.MaxValue => ((ulong)x).ToString(CultureInfo.InvariantCulture),
                _ => null,
            };
        if (keyType == typeof(Guid)) return key is Guid g ? g.ToString("D") : null;
        return key as string;
    }

    /// <summary>The CLR types a data property may have (also as nullable, arrays and List&lt;T&gt; of them).</summary>
    public static readonly Type[] ScalarTypes =
    [
        typeof(string), typeof(bool), typeof(int), typeof(long), typeof(short), typeof(byte), typeof(uint), typeof(ulong), typeof(ushort), typeof(sbyte),
        typeof(float), typeof(double), typeof(decimal), typeof(Guid), typeof(DateTime), typeof(DateTimeOffset),
    ];

    public static string SupportedTypesText =>
        string.Join(", ", ScalarTypes.Select(t => t.Name)) + ", their nullable forms, and arrays / List<T> of them";

    public static bool IsSupportedDataType(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (ScalarTypes.Contains(type)) return true;
        return ElementType(type) is { } e && ScalarTypes.Contains(Nullable.GetUnderlyingType(e) ?? e);
    }

    private static Type? ElementType(Type type)
    {
        if (type.IsArray) return type.GetElementType();
        if (type.IsGenericType)
        {
            var def = type.GetGenericTypeDefinition();
            if (def == typeof(List<>) || def == typeof(IList<>) || def == typeof(IReadOnlyList<>) || def == typeof(ICollection<>)
                || def == typeof(IReadOnlyCollection<>) || def == typeof(IEnumerable<>))
                return type.GetGenericArguments()[0];
        }
        return null;
    }

    /// <summary>A scalar as a payload value, or null when it is not of a supported type.</summary>
    public static PayloadValue? ToScalar(object? value) => value switch
    {
        null => null,
        string s => PayloadValue.String(s),
        bool b => PayloadValue.Bool(b),
        Guid g => PayloadValue.String(g.ToString("D")),
        DateTime d => PayloadValue.String(d.ToString("O", CultureInfo.InvariantCulture)),
        DateTimeOffset d => PayloadValue.String(d.ToString("O", CultureInfo.InvariantCulture)),
        _ when TryToNumber(value, out double x) => PayloadValue.Number(x),
        _ => null,
    };

    public static bool TryToNumber(object? value, out double x)
    {
        switch (value)
        {
            case int v: x = v; return true;
            case long v: x = v; return true;
            case short v: x = v; return true;
            case byte v: x = v; return true;
            case uint v: x = v; return true;
            case ulong v: x = v; return true;
            case ushort v: x = v; return true;
            case sbyte v: x = v; return true;
            case float v: x = v; return true;
            case double v: x = v; return true;
            case decimal v: x = (double)v; return true;
            default: x = 0; return false;
        }
    }

    /// <summary>A property value as a payload value (null for null), or an exception naming the property.</summary>
    public static PayloadValue? ToPayload(object? value, string property)
    {
        if (value is null) return null;
        if (value is not string && value is IEnumerable list)
        {
            var items = new List<PayloadValue>();
            foreach (object? o in list)
            {
                if (o is null) continue;
                items.Add(ToScalar(o) ?? throw new NotSupportedException($"Property '{property}' holds a {o.GetType().Name}; supported: {SupportedTypesText}."));
            }
            return PayloadValue.List(items.ToArray());
        }
        return ToScalar(value) ?? throw new NotSupportedException($"Property '{property}' is a {value.GetType().Name}; supported: {SupportedTypesText}.");
    }

    /// <summary>A stored payload value back as a value of <paramref name="type"/>.</summary>
    public static object? FromPayload(PayloadValue? value, Type type, string property)
    {
        if (value is null) return type.IsValueType && Nullable.GetUnderlyingType(type) is null ? Activator.CreateInstance(type) : null;
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (value.Kind == PayloadKind.List)
        {
            var element = ElementType(target) ?? throw Mismatch(property, type, value);
            var items = value.AsList.Select(v => FromPayload(v, element, property)).ToArray();
            if (target.IsArray)
            {
                var arr = Array.CreateInstance(element, items.Length);
                for (int i = 0; i < items.Length; i++) arr.SetValue(items[i], i);
                return arr;
            }
            var l = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
            foreach (var i in items) l.Add(i);
            return l;
        }
        try
        {
            return value.Kind switch
            {
                PayloadKind.String when target == typeof(string) => value.AsString,
                PayloadKind.String when target == typeof(Guid) => Guid.Parse(value.AsString, CultureInfo.InvariantCulture),
                PayloadKind.String when target == typeof(DateTime) => DateTime.Parse(value.AsString, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                PayloadKind.String when target == typeof(DateTimeOffset) => DateTimeOffset.Parse(value.AsString, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                PayloadKind.Bool when target == typeof(bool) => value.AsBool,
                PayloadKind.Number when target == typeof(double) => value.AsNumber,
                PayloadKind.Number when target == typeof(float) => (float)value.AsNumber,
                PayloadKind.Number when target == typeof(decimal) => (decimal)value.AsNumber,
                PayloadKind.Number when target.IsPrimitive && target != typeof(bool) && target != typeof(char) =>
                    Convert.ChangeType(value.AsNumber, target, CultureInfo.InvariantCulture),
                _ => throw Mismatch(property, type, value),
            };
        }
        catch (FormatException e)
        {
            throw new InvalidOperationException($"Property '{property}': the stored value {value} does not parse as {type.Name}.", e);
        }
    }

    private static InvalidOperationException Mismatch(string property, Type type, PayloadValue value) =>
        new($"Property '{property}' is a {type.Name} but the stored value is {value.Kind} {value}: the record was written with another schema.");

    // ------------------------------------------------------------ wire conversions (remote store)

    public static V1.Value ToProto(PayloadValue v) => v.Kind switch
    {
        PayloadKind.String => new V1.Value { StringValue = v.AsString },
        PayloadKind.Number => new V1.Value { NumberValue = v.AsNumber },
        PayloadKind.Bool => new V1.Value { BoolValue = v.AsBool },
        _ => V1.Value.List(v.AsList.Select(ToProto).ToArray()),
    };

    public static PayloadValue FromProto(V1.Value v) => v.KindCase switch
    {
        V1.Value.KindOneofCase.StringValue => PayloadValue.String(v.StringValue),
        V1.Value.KindOneofCase.NumberValue => PayloadValue.Number(v.NumberValue),
        V1.Value.KindOneofCase.BoolValue => PayloadValue.Bool(v.BoolValue),
        V1.Value.KindOneofCase.ListValue => PayloadValue.List(v.ListValue.Values.Select(FromProto).ToArray()),
        _ => throw new InvalidOperationException("The server returned a payload value with no kind set."),
    };
}
