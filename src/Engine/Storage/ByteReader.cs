using System.Buffers.Binary;

namespace Adanns.Engine.Storage;

/// <summary>Bounds-checked little-endian reads over one stored entry; every failure names the entry and offset.</summary>
internal ref struct ByteReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _what;
    private int _pos;

    public ByteReader(ReadOnlySpan<byte> data, string what)
    {
        _data = data;
        _what = what;
        _pos = 0;
    }

    public readonly int Position => _pos;
    public readonly int Remaining => _data.Length - _pos;

    public ReadOnlySpan<byte> Bytes(int n, string field)
    {
        if (n < 0 || n > Remaining) throw Fail($"{field} needs {n} bytes but {Remaining} remain");
        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }

    public byte Byte(string field) => Bytes(1, field)[0];
    public ushort UInt16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, field));
    public int Int32(string field) => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4, field));
    public uint UInt32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, field));
    public long Int64(string field) => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8, field));
    public ulong UInt64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8, field));
    public double Double(string field) => BinaryPrimitives.ReadDoubleLittleEndian(Bytes(8, field));

    public int Int32In(string field, int min, int max)
    {
        int v = Int32(field);
        if (v < min || v > max) throw Fail($"{field} = {v} is outside [{min}, {max}]");
        return v;
    }

    public void Floats(Span<float> dst, string field)
    {
        var src = Bytes(checked(dst.Length * 4), field);
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
    }

    public readonly AdannsException Fail(string problem) =>
        new(AdannsErrorCode.Corrupt, $"{_what} at byte {_pos}: {problem} (corrupt or truncated).");
}
