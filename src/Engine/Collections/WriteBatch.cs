using System.Buffers.Binary;
using System.IO.Hashing;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

/// <summary>Kinds of write-ahead log entries.</summary>
internal enum WalOp : byte
{
    Upsert = 1,
    Delete = 2,
}

/// <summary>
/// One write (a batch of upserts or deletes), as validated in memory and as one write-ahead log entry:
/// <code>
/// version u8 (1) | op u8 | first LSN i64 | count i32 | dim i32
/// upsert, per record: id | payload length i32 | payload | dim × f32
/// delete, per record: id
/// </code>
/// Record i of the batch has LSN firstLsn + i; an upserted record's LSN is also its key in the store and the index.
/// FASTER checksums each entry; the lengths here are still bounds-checked on replay.
/// </summary>
internal sealed class WriteBatch
{
    private const byte Version = 1;
    private const int HeaderBytes = 1 + 1 + 8 + 4 + 4;

    public required WalOp Op { get; init; }
    public long FirstLsn { get; set; }
    public required int Dimension { get; init; }
    public required RecordId[] Ids { get; init; }
    public float[] Vectors { get; init; } = []; // count × dim, row-major
    public IReadOnlyDictionary<string, PayloadValue>?[] Payloads { get; init; } = [];
    public int Count => Ids.Length;
    public long LastLsn => FirstLsn + Count - 1;

    public ReadOnlySpan<float> Vector(int i) => Vectors.AsSpan(i * Dimension, Dimension);

    /// <summary>Record i's vector as a view of <see cref="Vectors"/> (never written after the batch is built, so it can be held).</summary>
    public ReadOnlyMemory<float> VectorMemory(int i) => Vectors.AsMemory(i * Dimension, Dimension);

    /// <summary>The encoded entry in an array rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/> (its first
    /// <paramref name="length"/> bytes; the caller returns it once the log has copied it): one fresh ~55 KB array per
    /// batch of 100 at 128 dims was ~600 bytes of garbage per vector written.</summary>
    public byte[] EncodeRented(out int length)
    {
        long size = EncodedSize();
        var buf = System.Buffers.ArrayPool<byte>.Shared.Rent((int)size);
        length = (int)size;
        Write(buf.AsSpan(0, length));
        return buf;
    }

    public byte[] Encode()
    {
        var buf = new byte[EncodedSize()];
        Write(buf);
        return buf;
    }

    private long EncodedSize()
    {
        long size = HeaderBytes;
        for (int i = 0; i < Count; i++)
        {
            size += Ids[i].EncodedLength;
            if (Op == WalOp.Upsert) size += 4 + PayloadCodec.EncodedLength(Payloads[i], i) + 4L * Dimension;
        }
        if (size > WriteAheadLog.MaxEntryBytes)
            throw new AdannsException(AdannsErrorCode.BatchTooLarge,
                $"The batch of {Count} records encodes to {size} bytes; one write holds at most {WriteAheadLog.MaxEntryBytes}. Split it into smaller batches.");
        return size;
    }

    private void Write(Span<byte> s)
    {
        s[0] = Version;
        s[1] = (byte)Op;
        BinaryPrimitives.WriteInt64LittleEndian(s[2..], FirstLsn);
        BinaryPrimitives.WriteInt32LittleEndian(s[10..], Count);
        BinaryPrimitives.WriteInt32LittleEndian(s[14..], Dimension);
        int at = HeaderBytes;
        for (int i = 0; i < Count; i++)
        {
            at += Ids[i].Write(s[at..]);
            if (Op != WalOp.Upsert) continue;
            int pl = PayloadCodec.Write(Payloads[i], s[(at + 4)..]);
            BinaryPrimitives.WriteInt32LittleEndian(s[at..], pl);
            at += 4 + pl;
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(Vector(i)).CopyTo(s[at..]);
            at += 4 * Dimension;
        }
    }

    /// <summary>Writes the LSN into an encoded entry (assigned under the collection's sequence lock).</summary>
    public static void PatchLsn(Span<byte> entry, long firstLsn) => BinaryPrimitives.WriteInt64LittleEndian(entry[2..], firstLsn);

    public static WriteBatch Decode(byte[] entry, int dimension, string what)
    {
        var r = new ByteReader(entry, what);
        byte version = r.Byte("version");
        if (version != Version) throw r.Fail($"entry format version {version} is not supported (this build reads {Version})");
        byte op = r.Byte("op");
        if (op is not ((byte)WalOp.Upsert or (byte)WalOp.Delete)) throw r.Fail($"unknown op {op}");
        long lsn = r.Int64("first LSN");
        if (lsn < 1) throw r.Fail($"first LSN {lsn} is not positive");
        int count = r.Int32In("count", 0, r.Remaining);
        int dim = r.Int32("dimension");
        if (dim != dimension) throw r.Fail($"dimension {dim} differs from the collection's {dimension}");
        var ids = new RecordId[count];
        float[] vectors = op == (byte)WalOp.Upsert ? new float[checked((long)count * dim)] : [];
        var payloads = op == (byte)WalOp.Upsert ? new IReadOnlyDictionary<string, PayloadValue>?[count] : [];
        for (int i = 0; i < count; i++)
        {
            ids[i] = RecordId.Read(ref r);
            if (op != (byte)WalOp.Upsert) continue;
            int pl = r.Int32In("payload length", 0, r.Remaining);
            payloads[i] = PayloadCodec.Read(ref r, pl);
            r.Floats(vectors.AsSpan(i * dim, dim), "vector");
        }
        if (r.Remaining != 0) throw r.Fail($"{r.Remaining} bytes left over after {count} records");
        return new WriteBatch { Op = (WalOp)op, FirstLsn = lsn, Dimension = dim, Ids = ids, Vectors = vectors, Payloads = payloads };
    }
}

/// <summary>
/// A record's value in the record store:
/// <code>version u8 (1) | id | payload length i32 | payload | dim i32 | dim × f32 | CRC-32 of all before (u32)</code>
/// </summary>
internal static class RecordCodec
{
    private const byte Version = 1;

    public static int EncodedLength(RecordId id, int payloadBytes, int dim) => 1 + id.EncodedLength + 4 + payloadBytes + 4 + 4 * dim + 4;

    public static byte[] Encode(RecordId id, IReadOnlyDictionary<string, PayloadValue>? payload, ReadOnlySpan<float> vector)
    {
        int pl = PayloadCodec.EncodedLength(payload, 0);
        var buf = new byte[EncodedLength(id, pl, vector.Length)];
        Write(id, payload, pl, vector, buf);
        return buf;
    }

    /// <summary>
    /// Encodes into <paramref name="scratch"/> (grown when too small) and returns the encoded bytes, a view of it valid
    /// until the next call: the applier encodes every stored record this way (the store copies it), instead of one array
    /// per record (~600 bytes each at 128 dims, tens of MB a second of garbage under steady ingest).
    /// </summary>
    public static ReadOnlySpan<byte> Encode(RecordId id, IReadOnlyDictionary<string, PayloadValue>? payload, ReadOnlySpan<float> vector, ref byte[] scratch)
    {
        int pl = PayloadCodec.EncodedLength(payload, 0);
        int length = EncodedLength(id, pl, vector.Length);
        if (scratch.Length < length) scratch = new byte[Math.Max(length, 2 * scratch.Length)];
        var s = scratch.AsSpan(0, length);
        Write(id, payload, pl, vector, s);
        return s;
    }

    private static void Write(RecordId id, IReadOnlyDictionary<string, PayloadValue>? payload, int pl, ReadOnlySpan<float> vector, Span<byte> s)
    {
        s[0] = Version;
        int at = 1 + id.Write(s[1..]);
        BinaryPrimitives.WriteInt32LittleEndian(s[at..], pl);
        at += 4;
        at += PayloadCodec.Write(payload, s[at..]);
        BinaryPrimitives.WriteInt32LittleEndian(s[at..], vector.Length);
        at += 4;
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector).CopyTo(s[at..]);
        at += 4 * vector.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(s[at..], Crc32.HashToUInt32(s[..at]));
    }

    /// <summary>
    /// Copies only the vector of an encoded record into <paramref name="destination"/> (D floats), checking the
    /// checksum, version and dimension; allocates nothing (the vector is the record's tail, before the checksum).
    /// </summary>
    public static void DecodeVector(ReadOnlySpan<byte> value, Span<float> destination, string what)
    {
        int dim = destination.Length;
        int tail = 4 + 4 * dim + 4; // dimension, floats, checksum
        if (value.Length < 1 + tail) throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: a record of {value.Length} bytes is too short for a {dim}-dim vector (corrupt).");
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(value[^4..]);
        if (Crc32.HashToUInt32(value[..^4]) != crc)
            throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: a record fails its checksum (the record store is corrupt).");
        if (value[0] != Version) throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: record format version {value[0]} is not supported.");
        int stored = BinaryPrimitives.ReadInt32LittleEndian(value[^tail..]);
        if (stored != dim) throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: dimension {stored} differs from the collection's {dim}.");
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(value.Slice(value.Length - tail + 4, 4 * dim)).CopyTo(destination);
    }

    public static (RecordId Id, IReadOnlyDictionary<string, PayloadValue>? Payload, float[] Vector) Decode(ReadOnlySpan<byte> value, int dimension, string what)
    {
        if (value.Length < 4) throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: a record of {value.Length} bytes is too short (corrupt).");
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(value[^4..]);
        if (Crc32.HashToUInt32(value[..^4]) != crc)
            throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: a record fails its checksum (the record store is corrupt).");
        var r = new ByteReader(value[..^4], what);
        byte version = r.Byte("version");
        if (version != Version) throw r.Fail($"record format version {version} is not supported");
        var id = RecordId.Read(ref r);
        int pl = r.Int32In("payload length", 0, r.Remaining);
        var payload = PayloadCodec.Read(ref r, pl);
        int dim = r.Int32("dimension");
        if (dim != dimension) throw r.Fail($"dimension {dim} differs from the collection's {dimension}");
        var v = new float[dim];
        r.Floats(v, "vector");
        if (r.Remaining != 0) throw r.Fail($"{r.Remaining} bytes left over");
        return (id, payload, v);
    }
}
