using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Adanns.Engine.IO;

namespace Adanns.Engine.Persistence;

/// <summary>
/// The container every index file uses:
/// <code>
/// magic (8 bytes) | major u16 | minor u16 | flags u32
/// section* : tag (4 ASCII bytes) | length u64 | payload | CRC-32 of payload (u32)
/// "END " section (empty payload) — its absence means the file was truncated
/// </code>
/// All integers little-endian. Readers reject a newer major version and check every length against what is left of
/// the file before reading. A tag whose first letter is uppercase is critical: a reader that does not know it must
/// reject the file (the section may change how others are parsed); a tag starting lowercase is optional and is
/// skipped by readers that do not know it, which is how a newer minor version adds information older builds may
/// ignore (see <see cref="SectionReader.SkipUnknown"/>).
/// </summary>
internal static class SectionFile
{
    public const string EndTag = "END ";

    /// <summary>Writes a file atomically: temp file, then rename over <paramref name="path"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> magic, ushort major, ushort minor, Action<SectionWriter> body)
    {
        using var file = new AtomicFile(path);
        var w = new SectionWriter(file.Stream);
        Span<byte> header = stackalloc byte[16];
        magic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], major);
        BinaryPrimitives.WriteUInt16LittleEndian(header[10..], minor);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
        file.Stream.Write(header);
        body(w);
        w.Section(EndTag, _ => { });
        file.Commit();
    }
}

/// <summary>Builds one section at a time in memory, then writes it with its length and CRC.</summary>
internal sealed class SectionWriter(Stream stream)
{
    private readonly MemoryStream _buffer = new();

    public void Section(string tag, Action<BinaryWriter> write)
    {
        if (tag.Length != 4) throw new ArgumentException("Section tags are 4 characters.", nameof(tag));
        _buffer.SetLength(0);
        using (var bw = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true))
            write(bw);
        var payload = _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
        Span<byte> head = stackalloc byte[12];
        Encoding.ASCII.GetBytes(tag, head);
        BinaryPrimitives.WriteUInt64LittleEndian(head[4..], (ulong)payload.Length);
        stream.Write(head);
        stream.Write(payload);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32.HashToUInt32(payload));
        stream.Write(crc);
    }
}

/// <summary>Reads and verifies a section file; hands out each section's payload after its CRC checks out.</summary>
internal sealed class SectionReader : IDisposable
{
    private readonly FileStream _stream;
    private readonly long _length;

    public SectionReader(string path, ReadOnlySpan<byte> magic, ushort supportedMajor, ushort currentMinor)
    {
        Path = path;
        try
        {
            _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (FileNotFoundException e)
        {
            throw new IndexFileException(path, -1, "file not found.", e);
        }
        _length = _stream.Length;
        Span<byte> header = stackalloc byte[16];
        if (_length < 16 || _stream.ReadAtLeast(header, 16, throwOnEndOfStream: false) < 16)
            throw Fail(0, $"file is {_length} bytes, shorter than the 16-byte header.");
        if (!header[..8].SequenceEqual(magic))
            throw Fail(0, $"not an index file of this kind (magic {Convert.ToHexString(header[..8])}, expected {Convert.ToHexString(magic)}).");
        Major = BinaryPrimitives.ReadUInt16LittleEndian(header[8..]);
        Minor = BinaryPrimitives.ReadUInt16LittleEndian(header[10..]);
        if (Major != supportedMajor)
            throw Fail(8, $"format version {Major}.{Minor} is not supported (this build reads {supportedMajor}.x up to {supportedMajor}.{currentMinor}).");
    }

    public string Path { get; }
    public ushort Major { get; }
    public ushort Minor { get; }

    /// <summary>Next section: tag, payload (CRC-verified) and the payload's file offset. Null after "END ".</summary>
    public (string Tag, byte[] Payload, long Offset)? Next()
    {
        long at = _stream.Position;
        if (_length - at < 12)
            throw Fail(at, "file ends before its END section (truncated).");
        Span<byte> head = stackalloc byte[12];
        _stream.ReadExactly(head);
        string tag = Encoding.ASCII.GetString(head[..4]);
        ulong len = BinaryPrimitives.ReadUInt64LittleEndian(head[4..]);
        long remaining = _length - _stream.Position;
        if (len > (ulong)Math.Max(0, remaining - 4))
            throw Fail(at, $"section \"{tag}\" declares {len} bytes but only {Math.Max(0, remaining - 4)} remain (truncated or corrupt).");
        if (len > int.MaxValue - 64)
            throw Fail(at, $"section \"{tag}\" of {len} bytes is larger than this build can load.");
        long payloadAt = _stream.Position;
        var payload = new byte[len];
        _stream.ReadExactly(payload);
        Span<byte> crc = stackalloc byte[4];
        _stream.ReadExactly(crc);
        uint expected = BinaryPrimitives.ReadUInt32LittleEndian(crc);
        if (Crc32.HashToUInt32(payload) != expected)
            throw Fail(payloadAt, $"section \"{tag}\" fails its checksum (the file is corrupt).");
        if (tag == SectionFile.EndTag) return null;
        return (tag, payload, payloadAt);
    }

    public IndexFileException Fail(long offset, string problem) => new(Path, offset, problem);

    /// <summary>
    /// A section this reader does not know: skipped when optional (lowercase first letter), rejected when critical
    /// (uppercase), since it may change how the known sections must be read.
    /// </summary>
    public void SkipUnknown(string tag, long offset)
    {
        if (tag.Length > 0 && char.IsAsciiLetterUpper(tag[0]))
            throw Fail(offset, $"section \"{tag}\" is required to read this file but unknown to this build (format {Major}.{Minor}; written by a newer version?).");
    }

    public void Dispose() => _stream.Dispose();
}

/// <summary>Bounds-checked little-endian reads over one section's payload.</summary>
internal ref struct PayloadReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly SectionReader _file;
    private readonly long _base;
    private readonly string _tag;
    private int _pos;

    public PayloadReader(SectionReader file, string tag, byte[] payload, long offset)
    {
        _file = file;
        _tag = tag;
        _data = payload;
        _base = offset;
        _pos = 0;
    }

    public readonly int Remaining => _data.Length - _pos;

    private ReadOnlySpan<byte> Take(long n, string what)
    {
        if (n < 0 || n > Remaining)
            throw _file.Fail(_base + _pos, $"section \"{_tag}\": {what} needs {n} bytes but {Remaining} remain.");
        var s = _data.Slice(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    public int Int32(string what) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, what));
    public long Int64(string what) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, what));
    public byte Byte(string what) => Take(1, what)[0];
    public double Double(string what) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, what));
    public float Single(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));

    /// <summary>An int that must lie in [min, max]; the message says which field was wrong.</summary>
    public int Int32In(string what, int min, int max)
    {
        long at = _base + _pos;
        int v = Int32(what);
        if (v < min || v > max)
            throw _file.Fail(at, $"section \"{_tag}\": {what} = {v} is outside [{min}, {max}].");
        return v;
    }

    public string String(string what, int maxBytes)
    {
        int len = Int32In(what + " length", 0, maxBytes);
        return Encoding.UTF8.GetString(Take(len, what));
    }

    public void Floats(Span<float> dst, string what)
    {
        var src = Take((long)dst.Length * 4, what);
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
    }

    /// <summary><see cref="Floats"/>, rejecting NaN and infinities (centroids, codebooks, rotations: one bad value would poison every search).</summary>
    public void FiniteFloats(Span<float> dst, string what)
    {
        int at = _pos;
        Floats(dst, what);
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(dst)) return;
        int bad = 0;
        while (float.IsFinite(dst[bad])) bad++;
        throw _file.Fail(_base + at + 4L * bad, $"section \"{_tag}\": {what} value {bad} is {dst[bad]} (must be finite).");
    }

    public void Doubles(Span<double> dst, string what)
    {
        var src = Take((long)dst.Length * 8, what);
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(src).CopyTo(dst);
    }

    public void Bytes(Span<byte> dst, string what) => Take(dst.Length, what).CopyTo(dst);

    public void Longs(Span<long> dst, string what)
    {
        var src = Take((long)dst.Length * 8, what);
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(src).CopyTo(dst);
    }

    public void Ints(Span<int> dst, string what)
    {
        var src = Take((long)dst.Length * 4, what);
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(src).CopyTo(dst);
    }

    /// <summary>Guards a count before an allocation: count × bytesEach must fit in what is left.</summary>
    public readonly void EnsureFits(long count, long bytesEach, string what)
    {
        if (count < 0 || count * bytesEach > Remaining)
            throw _file.Fail(_base + _pos, $"section \"{_tag}\": {what} ({count} × {bytesEach} bytes) exceeds the {Remaining} bytes left.");
    }
}
