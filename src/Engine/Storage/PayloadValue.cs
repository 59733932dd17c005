using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Adanns.Engine.Storage;

/// <summary>Kinds of payload values.</summary>
public enum PayloadKind : byte
{
    /// <summary>A UTF-8 string.</summary>
    String = 1,

    /// <summary>A number (IEEE double; integers up to 2^53 are exact).</summary>
    Number = 2,

    /// <summary>true / false.</summary>
    Bool = 3,

    /// <summary>A list of strings, numbers or bools (no nested lists).</summary>
    List = 4,
}

/// <summary>
/// One payload field's value: a string, number, bool, or a list of those. Immutable. Implicit conversions make
/// payloads easy to write: <c>new Dictionary&lt;string, PayloadValue&gt; { ["color"] = "red", ["price"] = 9.5 }</c>.
/// </summary>
public sealed class PayloadValue : IEquatable<PayloadValue>
{
    private readonly string? _string;
    private readonly double _number;
    private readonly PayloadValue[]? _list;

    private PayloadValue(PayloadKind kind, string? s, double n, PayloadValue[]? list)
    {
        Kind = kind;
        _string = s;
        _number = n;
        _list = list;
    }

    /// <summary>The kind of value.</summary>
    public PayloadKind Kind { get; }

    /// <summary>The string (throws for other kinds).</summary>
    public string AsString => Kind == PayloadKind.String ? _string! : throw WrongKind(PayloadKind.String);

    /// <summary>The number (throws for other kinds).</summary>
    public double AsNumber => Kind == PayloadKind.Number ? _number : throw WrongKind(PayloadKind.Number);

    /// <summary>The bool (throws for other kinds).</summary>
    public bool AsBool => Kind == PayloadKind.Bool ? _number != 0 : throw WrongKind(PayloadKind.Bool);

    /// <summary>The list items (throws for other kinds).</summary>
    public IReadOnlyList<PayloadValue> AsList => Kind == PayloadKind.List ? _list! : throw WrongKind(PayloadKind.List);

    /// <summary>A string value.</summary>
    public static PayloadValue String(string value) => new(PayloadKind.String, value ?? throw new ArgumentNullException(nameof(value)), 0, null);

    /// <summary>A number value (must be finite).</summary>
    public static PayloadValue Number(double value) =>
        double.IsFinite(value) ? new(PayloadKind.Number, null, value, null)
            : throw new AdannsException(AdannsErrorCode.InvalidPayload, $"Payload numbers must be finite (got {value}).");

    /// <summary>A bool value.</summary>
    public static PayloadValue Bool(bool value) => new(PayloadKind.Bool, null, value ? 1 : 0, null);

    /// <summary>A list of scalar values.</summary>
    public static PayloadValue List(params PayloadValue[] items)
    {
        ArgumentNullException.ThrowIfNull(items);
        foreach (var i in items)
            if (i is null || i.Kind == PayloadKind.List)
                throw new AdannsException(AdannsErrorCode.InvalidPayload, "Payload lists hold strings, numbers or bools (no nulls, no nested lists).");
        return new(PayloadKind.List, null, 0, (PayloadValue[])items.Clone());
    }

    /// <summary>String.</summary>
    public static implicit operator PayloadValue(string value) => String(value);

    /// <summary>Number.</summary>
    public static implicit operator PayloadValue(double value) => Number(value);

    /// <summary>Number.</summary>
    public static implicit operator PayloadValue(long value) => Number(value);

    /// <summary>Number.</summary>
    public static implicit operator PayloadValue(int value) => Number(value);

    /// <summary>Bool.</summary>
    public static implicit operator PayloadValue(bool value) => Bool(value);

    /// <summary>List.</summary>
    public static implicit operator PayloadValue(PayloadValue[] items) => List(items);

    /// <summary>List of strings.</summary>
    public static implicit operator PayloadValue(string[] items) => List(Array.ConvertAll(items, String));

    /// <summary>Scalar equality (same kind and value); lists compare element-wise.</summary>
    public bool Equals(PayloadValue? other)
    {
        if (other is null || other.Kind != Kind) return false;
        return Kind switch
        {
            PayloadKind.String => string.Equals(_string, other._string, StringComparison.Ordinal),
            PayloadKind.List => _list!.AsSpan().SequenceEqual(other._list!),
            _ => _number.Equals(other._number),
        };
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as PayloadValue);

    /// <inheritdoc/>
    public override int GetHashCode() => Kind switch
    {
        PayloadKind.String => StringComparer.Ordinal.GetHashCode(_string!),
        PayloadKind.List => _list!.Length,
        _ => _number.GetHashCode(),
    };

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        PayloadKind.String => $"\"{_string}\"",
        PayloadKind.Number => _number.ToString("R", CultureInfo.InvariantCulture),
        PayloadKind.Bool => _number != 0 ? "true" : "false",
        _ => "[" + string.Join(", ", _list!.Select(v => v.ToString())) + "]",
    };

    private InvalidOperationException WrongKind(PayloadKind wanted) => new($"Payload value is a {Kind}, not a {wanted}.");

    internal int EncodedLength() => Kind switch
    {
        PayloadKind.String => 5 + Encoding.UTF8.GetByteCount(_string!),
        PayloadKind.Number => 9,
        PayloadKind.Bool => 2,
        _ => 5 + ListLength(_list!),
    };

    private static int ListLength(PayloadValue[] items) // a loop, not LINQ's Sum: no enumerator per value encoded
    {
        int n = 0;
        foreach (var v in items) n += v.EncodedLength();
        return n;
    }

    internal int Write(Span<byte> dst)
    {
        dst[0] = (byte)Kind;
        switch (Kind)
        {
            case PayloadKind.String:
                {
                    int n = Encoding.UTF8.GetBytes(_string!, dst[5..]);
                    BinaryPrimitives.WriteInt32LittleEndian(dst[1..], n);
                    return 5 + n;
                }
            case PayloadKind.Number:
                BinaryPrimitives.WriteDoubleLittleEndian(dst[1..], _number);
                return 9;
            case PayloadKind.Bool:
                dst[1] = (byte)(_number != 0 ? 1 : 0);
                return 2;
            default:
                {
                    BinaryPrimitives.WriteInt32LittleEndian(dst[1..], _list!.Length);
                    int at = 5;
                    foreach (var v in _list) at += v.Write(dst[at..]);
                    return at;
                }
        }
    }

    internal static PayloadValue Read(ref ByteReader r, bool allowList)
    {
        byte kind = r.Byte("payload value kind");
        switch ((PayloadKind)kind)
        {
            case PayloadKind.String:
                {
                    int n = r.Int32In("payload string length", 0, r.Remaining);
                    return new(PayloadKind.String, Encoding.UTF8.GetString(r.Bytes(n, "payload string")), 0, null);
                }
            case PayloadKind.Number:
                return new(PayloadKind.Number, null, r.Double("payload number"), null);
            case PayloadKind.Bool:
                return Bool(r.Byte("payload bool") != 0);
            case PayloadKind.List when allowList:
                {
                    int n = r.Int32In("payload list length", 0, r.Remaining / 2);
                    var items = new PayloadValue[n];
                    for (int i = 0; i < n; i++) items[i] = Read(ref r, allowList: false);
                    return new(PayloadKind.List, null, 0, items);
                }
            default:
                throw r.Fail($"unknown payload value kind {kind}");
        }
    }
}

/// <summary>Binary encoding of a payload (field name → value): u16 count, then per field u16 name length, UTF-8 name, value.</summary>
internal static class PayloadCodec
{
    public const int MaxFields = ushort.MaxValue;

    /// <summary>Encoded size; validates names (non-empty, ≤ 255 UTF-8 bytes) and values.</summary>
    public static int EncodedLength(IReadOnlyDictionary<string, PayloadValue>? payload, int recordIndex)
    {
        if (payload is null || payload.Count == 0) return 0;
        if (payload.Count > MaxFields)
            throw new AdannsException(AdannsErrorCode.InvalidPayload, $"Record {recordIndex}: payload has {payload.Count} fields (max {MaxFields}).", recordIndex);
        int n = 2;
        // A Dictionary (what the engine stores: every upsert copies its payload into one) is enumerated through its
        // struct enumerator; through the interface each pass boxed one (~5 per record upserted: validation, log entry,
        // record encoding), a few hundred bytes of garbage per vector under steady ingest.
        if (payload is Dictionary<string, PayloadValue> d)
            foreach (var (name, value) in d) n += FieldLength(name, value, recordIndex);
        else
            foreach (var (name, value) in payload) n += FieldLength(name, value, recordIndex);
        return n;
    }

    private static int FieldLength(string name, PayloadValue value, int recordIndex)
    {
        int nb = Encoding.UTF8.GetByteCount(name);
        if (nb == 0 || nb > 255)
            throw new AdannsException(AdannsErrorCode.InvalidPayload, $"Record {recordIndex}: payload field names must be 1–255 UTF-8 bytes (got \"{name}\").", recordIndex);
        if (value is null)
            throw new AdannsException(AdannsErrorCode.InvalidPayload, $"Record {recordIndex}: payload field \"{name}\" is null.", recordIndex);
        return 2 + nb + value.EncodedLength();
    }

    public static int Write(IReadOnlyDictionary<string, PayloadValue>? payload, Span<byte> dst)
    {
        if (payload is null || payload.Count == 0) return 0;
        BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)payload.Count);
        int at = 2;
        if (payload is Dictionary<string, PayloadValue> d) // its struct enumerator: no boxing (see EncodedLength)
            foreach (var (name, value) in d) at += WriteField(name, value, dst[at..]);
        else
            foreach (var (name, value) in payload) at += WriteField(name, value, dst[at..]);
        return at;
    }

    private static int WriteField(string name, PayloadValue value, Span<byte> dst)
    {
        int nb = Encoding.UTF8.GetBytes(name, dst[2..]);
        BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)nb);
        return 2 + nb + value.Write(dst[(2 + nb)..]);
    }

    /// <summary>Decodes exactly <paramref name="length"/> bytes (0 = no payload → null).</summary>
    public static IReadOnlyDictionary<string, PayloadValue>? Read(ref ByteReader r, int length)
    {
        if (length == 0) return null;
        int end = r.Position + length;
        int count = r.UInt16("payload field count");
        var d = new Dictionary<string, PayloadValue>(count, StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            int nb = r.UInt16("payload field name length");
            string name = Encoding.UTF8.GetString(r.Bytes(nb, "payload field name"));
            d[name] = PayloadValue.Read(ref r, allowList: true);
        }
        if (r.Position != end) throw r.Fail($"payload decoded to {r.Position - (end - length)} bytes, expected {length}");
        return d;
    }
}
