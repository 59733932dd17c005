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

/// <summary>
/// Writes one section at a time straight to the file: header with the length left open, the payload through a CRC, then
/// the length patched in and the CRC appended. Nothing is buffered, so a section may exceed 2 GB (a 64-bit length).
/// Written data is made durable every <see cref="SyncBytes"/> as it goes (fsync), not all at the end: an index snapshot of
/// hundreds of MB left dirty until one final fsync held every write-ahead-log commit of the same file system behind it
/// (commits of 20 KB while a 300 MB file was written: max 122–234 ms with one fsync at the end, 20–36 ms with one every
/// 8 MB; issue 20, where a collection saves its index beside steady ingest).
/// </summary>
internal sealed class SectionWriter(Stream stream)
{
    /// <summary>Bytes written between two fsyncs of the file.</summary>
    internal const long SyncBytes = 8L << 20;

    private long _unsynced;

    /// <summary>Intermediate fsyncs made so far (tests).</summary>
    internal int Syncs { get; private set; }

    private void Wrote(int bytes)
    {
        _unsynced += bytes;
        if (_unsynced < SyncBytes || stream is not FileStream file) return;
        file.Flush(flushToDisk: true);
        _unsynced = 0;
        Syncs++;
    }

    public void Section(string tag, Action<BinaryWriter> write)
    {
        if (tag.Length != 4) throw new ArgumentException("Section tags are 4 characters.", nameof(tag));
        Span<byte> head = stackalloc byte[12];
        Encoding.ASCII.GetBytes(tag, head);
        long headAt = stream.Position;
        stream.Write(head); // length patched below
        var body = new CrcStream(stream, this);
        using (var bw = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
            write(bw);
        long end = stream.Position;
        BinaryPrimitives.WriteUInt64LittleEndian(head[4..], (ulong)body.Length);
        stream.Position = headAt;
        stream.Write(head);
        stream.Position = end;
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, body.Crc);
        stream.Write(crc);
    }

    /// <summary>Passes writes through to the file, counting them and folding them into a CRC-32.</summary>
    private sealed class CrcStream(Stream inner, SectionWriter owner) : Stream
    {
        private readonly Crc32 _crc = new();

        public long Written { get; private set; }
        public uint Crc => _crc.GetCurrentHashAsUInt32();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _crc.Append(buffer);
            inner.Write(buffer);
            Written += buffer.Length;
            owner.Wrote(buffer.Length);
        }

        public override void WriteByte(byte value) => Write([value]);
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

    /// <summary>Next section: tag, payload (CRC-verified; any length, held in chunks) and the payload's file offset. Null after "END ".</summary>
    public (string Tag, SectionPayload Payload, long Offset)? Next()
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
        long payloadAt = _stream.Position;
        var payload = SectionPayload.Read(_stream, (long)len, out uint actual);
        Span<byte> crc = stackalloc byte[4];
        _stream.ReadExactly(crc);
        uint expected = BinaryPrimitives.ReadUInt32LittleEndian(crc);
        if (actual != expected)
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

/// <summary>
/// A section's payload, in chunks of at most <see cref="ChunkBytes"/> (so a section may exceed what one array holds,
/// 2 GB); offsets are 64-bit.
/// </summary>
internal sealed class SectionPayload
{
    /// <summary>Bytes per chunk: 1 GiB, unless a test lowers it on its own thread to exercise reads that straddle chunks.</summary>
    internal static int ChunkBytes
    {
        get => t_chunkBytes > 0 ? t_chunkBytes : 1 << 30;
        set => t_chunkBytes = value;
    }

    [ThreadStatic] private static int t_chunkBytes;

    private readonly byte[][] _chunks;
    private readonly int _chunkBytes;

    private SectionPayload(byte[][] chunks, long length, int chunkBytes)
    {
        _chunks = chunks;
        Length = length;
        _chunkBytes = chunkBytes;
    }

    public long Length { get; }

    /// <summary>The payload as one array (payloads under <see cref="ChunkBytes"/>), e.g. for tests and small sections.</summary>
    public static SectionPayload FromBytes(byte[] bytes) => new([bytes], bytes.Length, Math.Max(1, bytes.Length));

    /// <summary>Reads <paramref name="length"/> bytes from <paramref name="stream"/> in chunks, with their CRC-32.</summary>
    public static SectionPayload Read(Stream stream, long length, out uint crc)
    {
        int chunkBytes = ChunkBytes;
        var chunks = new byte[Math.Max(1, (int)((length + chunkBytes - 1) / chunkBytes))][];
        var hash = new Crc32();
        long left = length;
        for (int c = 0; c < chunks.Length; c++)
        {
            var chunk = new byte[Math.Min(left, chunkBytes)];
            stream.ReadExactly(chunk);
            hash.Append(chunk);
            chunks[c] = chunk;
            left -= chunk.Length;
        }
        crc = hash.GetCurrentHashAsUInt32();
        return new SectionPayload(chunks, length, chunkBytes);
    }

    /// <summary>The bytes [at, at + n) when they lie in one chunk; empty otherwise (the caller copies).</summary>
    internal ReadOnlySpan<byte> Contiguous(long at, int n)
    {
        int c = (int)(at / _chunkBytes), o = (int)(at % _chunkBytes);
        if (n == 0) return [];
        return o + n <= _chunks[c].Length ? _chunks[c].AsSpan(o, n) : default;
    }

    /// <summary>Copies the bytes from <paramref name="at"/> on into <paramref name="destination"/>, across chunks.</summary>
    internal void CopyTo(long at, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            int c = (int)(at / _chunkBytes), o = (int)(at % _chunkBytes);
            int n = Math.Min(destination.Length, _chunks[c].Length - o);
            _chunks[c].AsSpan(o, n).CopyTo(destination);
            destination = destination[n..];
            at += n;
        }
    }
}

/// <summary>Bounds-checked little-endian reads over one section's payload (64-bit offsets: a payload may exceed 2 GB).</summary>
internal ref struct PayloadReader
{
    private readonly SectionPayload _data;
    private readonly SectionReader _file;
    private readonly long _base;
    private readonly string _tag;
    private long _pos;

    public PayloadReader(SectionReader file, string tag, SectionPayload payload, long offset)
    {
        _file = file;
        _tag = tag;
        _data = payload;
        _base = offset;
        _pos = 0;
    }

    /// <summary>Bytes left, saturated at <see cref="int.MaxValue"/> (see <see cref="RemainingBytes"/>).</summary>
    public readonly int Remaining => (int)Math.Min(RemainingBytes, int.MaxValue);

    /// <summary>Bytes left.</summary>
    public readonly long RemainingBytes => _data.Length - _pos;

    private void Check(long n, string what)
    {
        if (n < 0 || n > RemainingBytes)
            throw _file.Fail(_base + _pos, $"section \"{_tag}\": {what} needs {n} bytes but {RemainingBytes} remain.");
    }

    /// <summary>The next <paramref name="n"/> bytes (n small, or within one chunk); copied when they straddle chunks.</summary>
    private ReadOnlySpan<byte> Take(int n, string what)
    {
        Check(n, what);
        var s = _data.Contiguous(_pos, n);
        if (s.Length != n)
        {
            var copy = new byte[n];
            _data.CopyTo(_pos, copy);
            s = copy;
        }
        _pos += n;
        return s;
    }

    /// <summary>Copies the next dst.Length bytes into <paramref name="dst"/>.</summary>
    private void Copy(Span<byte> dst, string what)
    {
        Check(dst.Length, what);
        _data.CopyTo(_pos, dst);
        _pos += dst.Length;
    }

    /// <summary>Copies the next dst.Length values of <typeparamref name="T"/> (any total size) into <paramref name="dst"/>.</summary>
    private void CopyValues<T>(Span<T> dst, string what) where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        Check((long)dst.Length * size, what);
        const int Piece = 1 << 26; // values per copy: dst as bytes must stay under 2 GB
        for (int i = 0; i < dst.Length; i += Piece)
            Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(dst.Slice(i, Math.Min(Piece, dst.Length - i))), what);
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

    public void Floats(Span<float> dst, string what) => CopyValues(dst, what);

    /// <summary><see cref="Floats"/>, rejecting NaN and infinities (centroids, codebooks, rotations: one bad value would poison every search).</summary>
    public void FiniteFloats(Span<float> dst, string what)
    {
        long at = _pos;
        Floats(dst, what);
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(dst)) return;
        int bad = 0;
        while (float.IsFinite(dst[bad])) bad++;
        throw _file.Fail(_base + at + 4L * bad, $"section \"{_tag}\": {what} value {bad} is {dst[bad]} (must be finite).");
    }

    public void Doubles(Span<double> dst, string what) => CopyValues(dst, what);

    public void Bytes(Span<byte> dst, string what) => Copy(dst, what);

    public void Longs(Span<long> dst, string what) => CopyValues(dst, what);

    public void Ints(Span<int> dst, string what) => CopyValues(dst, what);

    /// <summary>Guards a count before an allocation: count × bytesEach must fit in what is left.</summary>
    public readonly void EnsureFits(long count, long bytesEach, string what)
    {
        if (count < 0 || bytesEach < 0 || (count > 0 && bytesEach > RemainingBytes / count))
            throw _file.Fail(_base + _pos, $"section \"{_tag}\": {what} ({count} × {bytesEach} bytes) exceeds the {RemainingBytes} bytes left.");
    }
}
