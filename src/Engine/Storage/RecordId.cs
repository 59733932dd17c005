using System.Buffers.Binary;
using System.Text;

namespace Adanns.Engine.Storage;

/// <summary>
/// The id of a record in a collection: an unsigned 64-bit number or a non-empty string (≤ <see cref="MaxStringBytes"/>
/// UTF-8 bytes). The two kinds never compare equal (<c>7</c> and <c>"7"</c> are different records).
/// </summary>
public readonly struct RecordId : IEquatable<RecordId>, IComparable<RecordId>
{
    /// <summary>Longest string id, in UTF-8 bytes.</summary>
    public const int MaxStringBytes = 512;

    private readonly ulong _number;
    private readonly string? _text;

    /// <summary>A numeric id.</summary>
    public RecordId(ulong number)
    {
        _number = number;
        _text = null;
    }

    /// <summary>A string id (non-empty, at most <see cref="MaxStringBytes"/> UTF-8 bytes).</summary>
    public RecordId(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
            throw new AdannsException(AdannsErrorCode.InvalidId, "A string record id must not be empty.");
        if (Encoding.UTF8.GetByteCount(text) > MaxStringBytes)
            throw new AdannsException(AdannsErrorCode.InvalidId, $"String record id \"{Truncate(text)}\" is longer than {MaxStringBytes} UTF-8 bytes.");
        _number = 0;
        _text = text;
    }

    /// <summary>True for a string id.</summary>
    public bool IsString => _text is not null;

    /// <summary>The numeric id (0 for a string id).</summary>
    public ulong Number => _number;

    /// <summary>The string id, or null for a numeric id.</summary>
    public string? Text => _text;

    /// <summary>Numeric id.</summary>
    public static implicit operator RecordId(ulong number) => new(number);

    /// <summary>String id.</summary>
    public static implicit operator RecordId(string text) => new(text);

    /// <inheritdoc/>
    public bool Equals(RecordId other) => _text is null ? other._text is null && _number == other._number : string.Equals(_text, other._text, StringComparison.Ordinal);

    /// <summary>
    /// The engine's id order (it breaks equal search scores: the lower id wins): numbers before strings, numbers
    /// ascending, strings by ordinal (UTF-16 code unit) order.
    /// </summary>
    public int CompareTo(RecordId other)
    {
        if (IsString != other.IsString) return IsString ? 1 : -1;
        return IsString ? string.CompareOrdinal(_text, other._text) : _number.CompareTo(other._number);
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is RecordId r && Equals(r);

    /// <inheritdoc/>
    public override int GetHashCode() => _text is null ? _number.GetHashCode() : StringComparer.Ordinal.GetHashCode(_text) ^ 0x5bd1e995;

    /// <summary>Equality.</summary>
    public static bool operator ==(RecordId a, RecordId b) => a.Equals(b);

    /// <summary>Inequality.</summary>
    public static bool operator !=(RecordId a, RecordId b) => !a.Equals(b);

    /// <summary>The number, or the string in double quotes.</summary>
    public override string ToString() => _text is null ? _number.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"\"{Truncate(_text)}\"";

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    // Encoding: tag 1 + u64, or tag 2 + u16 length + UTF-8.
    internal int EncodedLength => _text is null ? 9 : 3 + Encoding.UTF8.GetByteCount(_text);

    internal int Write(Span<byte> dst)
    {
        if (_text is null)
        {
            dst[0] = 1;
            BinaryPrimitives.WriteUInt64LittleEndian(dst[1..], _number);
            return 9;
        }
        dst[0] = 2;
        int n = Encoding.UTF8.GetBytes(_text, dst[3..]);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[1..], (ushort)n);
        return 3 + n;
    }

    internal static RecordId Read(ref ByteReader r)
    {
        byte tag = r.Byte("record id tag");
        if (tag == 1) return new RecordId(r.UInt64("record id"));
        if (tag != 2) throw r.Fail($"unknown record id tag {tag}");
        int len = r.UInt16("record id length");
        if (len == 0 || len > MaxStringBytes) throw r.Fail($"string record id length {len} is outside [1, {MaxStringBytes}]");
        return new RecordId(Encoding.UTF8.GetString(r.Bytes(len, "record id")));
    }
}
