using System.Buffers.Binary;
using Adanns.Engine.Persistence;
using Adanns.Engine.Tests.IO;

namespace Adanns.Engine.Tests;

/// <summary>
/// Section files past 2 GB (issue 20): the writer streams a section (no in-memory buffer, 64-bit length) and the reader
/// holds a payload in chunks with 64-bit offsets. Shown without 2 GB of disk: the writer's length over a 3 GiB section
/// written to a counting stream, and the reader's chunk logic with chunks a few bytes long, so that every read straddles.
/// </summary>
public class SectionFileLargeTests : TempDirectoryTest
{
    private static readonly byte[] Magic = "ADNSTEST"u8.ToArray();

    /// <summary>A seekable stream that keeps only its first bytes (the file header and section header) and counts the rest.</summary>
    private sealed class CountingStream : Stream
    {
        private readonly byte[] _head = new byte[64];
        private long _position, _length;

        public ReadOnlySpan<byte> Head => _head;
        public override bool CanRead => false;
        public override bool CanSeek => true;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _position; set => _position = value; }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => _position = origin == SeekOrigin.Begin ? offset : origin == SeekOrigin.Current ? _position + offset : _length + offset;
        public override void SetLength(long value) => _length = value;
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_position < _head.Length)
                buffer[..(int)Math.Min(buffer.Length, _head.Length - _position)].CopyTo(_head.AsSpan((int)_position));
            _position += buffer.Length;
            _length = Math.Max(_length, _position);
        }
    }

    [Fact]
    public void WriterStreamsASectionPast2GB_WithItsTrueLength()
    {
        const long Size = 3L << 30; // 3 GiB: a MemoryStream-buffered writer failed at 2 GB
        var stream = new CountingStream();
        var w = new SectionWriter(stream);
        var chunk = new byte[1 << 20];
        w.Section("BIG ", b =>
        {
            for (long written = 0; written < Size; written += chunk.Length) b.Write(chunk);
        });
        Assert.Equal("BIG ", System.Text.Encoding.ASCII.GetString(stream.Head[..4]));
        Assert.Equal((ulong)Size, BinaryPrimitives.ReadUInt64LittleEndian(stream.Head[4..12]));
        Assert.Equal(12 + Size + 4, stream.Length); // header, payload, CRC
    }

    /// <summary>
    /// A file's data is made durable every <see cref="SectionWriter.SyncBytes"/> while it is written (not all by one fsync
    /// at the end, which held write-ahead-log commits behind it), and reads back intact; a stream that is not a file is
    /// never synced.
    /// </summary>
    [Fact]
    public void LargeFilesAreSyncedEvery8MiBAsTheyAreWritten()
    {
        string path = Path.Combine(Dir, "big.bin");
        var chunk = Enumerable.Range(0, 1 << 20).Select(i => (byte)(i * 7)).ToArray();
        using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            var w = new SectionWriter(file);
            w.Section("DATA", b =>
            {
                for (int i = 0; i < 20; i++) b.Write(chunk); // 20 MiB: synced after 8 and 16
            });
            Assert.Equal(2, w.Syncs);
        }
        var counting = new SectionWriter(new CountingStream());
        counting.Section("DATA", b =>
        {
            for (int i = 0; i < 20; i++) b.Write(chunk);
        });
        Assert.Equal(0, counting.Syncs);

        string whole = Path.Combine(Dir, "whole.bin");
        SectionFile.Write(whole, Magic, 1, 0, w => w.Section("DATA", b =>
        {
            for (int i = 0; i < 20; i++) b.Write(chunk);
        }));
        using var reader = new SectionReader(whole, Magic, 1, 0);
        var (tag, payload, offset) = reader.Next()!.Value;
        var r = new PayloadReader(reader, tag, payload, offset);
        var back = new byte[chunk.Length];
        for (int i = 0; i < 20; i++)
        {
            r.Bytes(back, "chunk");
            Assert.Equal(chunk, back);
        }
        Assert.Equal(0, r.RemainingBytes);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(4096)]
    public void ReadsStraddlingChunksReturnWhatWasWritten(int chunkBytes)
    {
        string path = Path.Combine(Dir, "sections.bin");
        var floats = Enumerable.Range(0, 1001).Select(i => i * 0.5f - 7).ToArray();
        var longs = Enumerable.Range(0, 333).Select(i => (long)i * 1_000_000_007).ToArray();
        SectionFile.Write(path, Magic, 1, 0, w =>
        {
            w.Section("DATA", b =>
            {
                b.Write((byte)9);
                b.Write(123_456_789);
                b.Write(-5L);
                b.Write(2.5);
                foreach (float f in floats) b.Write(f);
                foreach (long l in longs) b.Write(l);
                b.Write("straddle");
                b.Write(0.25f);
            });
            w.Section("tail", b => b.Write(77));
        });
        SectionPayload.ChunkBytes = chunkBytes; // this thread only
        try
        {
            using var file = new SectionReader(path, Magic, 1, 0);
            var (tag, payload, offset) = file.Next()!.Value;
            Assert.Equal("DATA", tag);
            var r = new PayloadReader(file, tag, payload, offset);
            Assert.Equal(9, r.Byte("b"));
            Assert.Equal(123_456_789, r.Int32("i"));
            Assert.Equal(-5L, r.Int64("l"));
            Assert.Equal(2.5, r.Double("d"));
            var f2 = new float[floats.Length];
            r.FiniteFloats(f2, "floats");
            Assert.Equal(floats, f2);
            var l2 = new long[longs.Length];
            r.Longs(l2, "longs");
            Assert.Equal(longs, l2);
            Assert.Equal(8, r.Byte("string length (7-bit)")); // BinaryWriter's length prefix
            var text = new byte[8];
            r.Bytes(text, "text");
            Assert.Equal("straddle", System.Text.Encoding.UTF8.GetString(text));
            Assert.Equal(0.25f, r.Single("f"));
            Assert.Equal(0, r.RemainingBytes);
            var e = Assert.Throws<IndexFileException>(() => PastEnd(file, tag, payload, offset));
            Assert.Contains("needs 4 bytes but 0 remain", e.Message);
            var (tag2, payload2, offset2) = file.Next()!.Value;
            Assert.Equal(77, new PayloadReader(file, tag2, payload2, offset2).Int32("tail"));
            Assert.Null(file.Next());
        }
        finally
        {
            SectionPayload.ChunkBytes = 0;
        }
    }

    private static void PastEnd(SectionReader file, string tag, SectionPayload payload, long offset)
    {
        var r = new PayloadReader(file, tag, payload, offset);
        var all = new byte[payload.Length];
        r.Bytes(all, "all");
        r.Int32("one more");
    }

    [Fact]
    public void ACorruptByteInAChunkedPayloadFailsItsChecksum()
    {
        string path = Path.Combine(Dir, "corrupt.bin");
        SectionFile.Write(path, Magic, 1, 0, w => w.Section("DATA", b => { for (int i = 0; i < 100; i++) b.Write(i); }));
        var bytes = File.ReadAllBytes(path);
        bytes[16 + 12 + 150] ^= 0x40; // header, section header, then inside the payload
        File.WriteAllBytes(path, bytes);
        SectionPayload.ChunkBytes = 16;
        try
        {
            using var file = new SectionReader(path, Magic, 1, 0);
            var e = Assert.Throws<IndexFileException>(() => file.Next());
            Assert.Contains("fails its checksum", e.Message);
        }
        finally
        {
            SectionPayload.ChunkBytes = 0;
        }
    }
}
