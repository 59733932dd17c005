using System.Collections.Concurrent;
using FASTER.core;

namespace Adanns.Engine.Storage;

/// <summary>
/// The durable record store of one collection: a FASTER key-value store (hybrid log: recent records in memory,
/// older ones on disk, so the store can be larger than memory) mapping an 8-byte record key to its encoded record.
/// </summary>
/// <remarks>
/// Threading: <see cref="Put"/> runs on one thread at a time (the collection's applier, on the writer session);
/// <see cref="Delete"/>, <see cref="Checkpoint"/> and <see cref="Compact"/> run on one thread at a time (the maintenance
/// session: the collection's background maintenance, or the applier while none runs), concurrently with
/// <see cref="Put"/> — FASTER's checkpoints (CPR) and scan compaction are designed to run beside writers;
/// <see cref="Get"/> may run on any thread (sessions are pooled: a FASTER session is not thread-safe, so each read
/// rents one). Reads of records on disk go pending and are completed on the same session.
/// </remarks>
internal sealed unsafe partial class RecordStore : IDisposable
{
    private readonly IDevice _device;
    private readonly FasterKV<SpanByte, SpanByte> _kv;
    private readonly ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>> _writer;
    private readonly ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>> _maintenance;
    private readonly ConcurrentBag<ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>>> _readers = new();
    private readonly string _checkpointDir;
    private volatile bool _disposed;

    /// <param name="directory">Directory of the hybrid log segments and checkpoints (created if absent).</param>
    /// <param name="memoryBytes">In-memory part of the hybrid log (a power of two ≥ 4 pages).</param>
    public RecordStore(string directory, long memoryBytes)
    {
        Directory.CreateDirectory(directory);
        _checkpointDir = Path.Combine(directory, "checkpoints");
        _device = Devices.CreateLogDevice(Path.Combine(directory, "records.log"), recoverDevice: true);
        var settings = new FasterKVSettings<SpanByte, SpanByte>
        {
            IndexSize = 1L << 22,
            LogDevice = _device,
            CheckpointDir = _checkpointDir,
            PageSize = PageBytes,
            MemorySize = Math.Max(memoryBytes, 4 * PageBytes),
            SegmentSize = PageBytes, // 4 MiB segments: compaction frees disk in these units
            // Records are never updated in place (new keys are appended, dead ones deleted), so a small mutable region
            // costs nothing and makes the log flush its pages as the tail moves, steadily, instead of leaving 90 % of the
            // in-memory log for a checkpoint to flush in one burst (which the write-ahead log's commits then queue behind).
            MutableFraction = 0.1,
            RemoveOutdatedCheckpoints = false, // the collection deletes old checkpoints only after its manifest moves on
        };
        _kv = new FasterKV<SpanByte, SpanByte>(settings);
        _writer = NewSession();
        _maintenance = NewSession();
    }

    /// <summary>Page size of the hybrid log; a record must fit in a page.</summary>
    public const long PageBytes = 1L << 22;

    /// <summary>Bytes between the log's begin and tail (live records plus garbage not yet compacted).</summary>
    public long LogBytes => _kv.Log.TailAddress - _kv.Log.BeginAddress;

    private ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>> NewSession() =>
        _kv.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>();

    /// <summary>Restores the store to checkpoint <paramref name="token"/>.</summary>
    public void Recover(Guid token) => _kv.Recover(token);

    /// <summary>Inserts or replaces the record under <paramref name="key"/>.</summary>
    public void Put(long key, ReadOnlySpan<byte> value)
    {
        fixed (byte* v = value)
        {
            var ks = SpanByte.FromPointer((byte*)&key, 8);
            var vs = SpanByte.FromPointer(v, value.Length);
            var st = _writer.Upsert(ref ks, ref vs);
            if (st.IsPending) _writer.CompletePending(wait: true);
        }
    }

    /// <summary>Deletes the record under <paramref name="key"/> (a no-op when absent). Maintenance session: see the remarks.</summary>
    public void Delete(long key)
    {
        var ks = SpanByte.FromPointer((byte*)&key, 8);
        var st = _maintenance.Delete(ref ks);
        if (st.IsPending) _maintenance.CompletePending(wait: true);
    }

    /// <summary>The record under <paramref name="key"/>, or null. Safe from any thread.</summary>
    public byte[]? Get(long key)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_readers.TryTake(out var s)) s = NewSession();
        try
        {
            var ks = SpanByte.FromPointer((byte*)&key, 8);
            SpanByteAndMemory output = default;
            var st = s.Read(ref ks, ref output);
            if (st.IsPending)
            {
                s.CompletePendingWithOutputs(out var outputs, wait: true);
                using (outputs)
                {
                    while (outputs.Next())
                    {
                        st = outputs.Current.Status;
                        output = outputs.Current.Output;
                    }
                }
            }
            if (!st.Found) return null;
            using var owner = output.Memory;
            return output.IsSpanByte ? output.SpanByte.AsReadOnlySpan().ToArray() : owner!.Memory.Span[..output.Length].ToArray();
        }
        finally
        {
            _readers.Add(s);
        }
    }

    /// <summary>Starts an asynchronous read of <paramref name="key"/> on <paramref name="session"/> (the key is copied before this returns).</summary>
    private static ValueTask<FasterKV<SpanByte, SpanByte>.ReadAsyncResult<SpanByte, SpanByteAndMemory, Empty>> StartRead(
        ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>> session, long key)
    {
        var ks = SpanByte.FromPointer((byte*)&key, 8);
        return session.ReadAsync(ref ks);
    }

    private static byte[] Copy(ref SpanByteAndMemory output)
    {
        using var owner = output.Memory;
        return output.IsSpanByte ? output.SpanByte.AsReadOnlySpan().ToArray() : owner!.Memory.Span[..output.Length].ToArray();
    }

    [ThreadStatic] private static byte[]? t_batchBuffer; // pinned scratch for batch reads
    private long _pendingReads;

    /// <summary>Batch reads (<see cref="ReadMany"/>) that went pending, i.e. found their record on disk, since open.</summary>
    public long PendingReads => Interlocked.Read(ref _pendingReads);

    /// <summary>
    /// Reads the records under <paramref name="keys"/> (distinct) as one batch on one pooled session: every read is
    /// issued first, then those that went to disk are completed together (FASTER's pending reads, far faster batched
    /// than one by one). <paramref name="visitor"/> hears each found record's index in <paramref name="keys"/> and its
    /// bytes (valid only during the call), in no particular order. Returns how many were found. Safe from any thread.
    /// </summary>
    /// <param name="keys">Record keys, distinct.</param>
    /// <param name="visitor">Receives each found record.</param>
    /// <param name="slotBytes">Expected record size: values up to this size are read into pinned per-thread scratch
    /// (no allocation); larger ones go through FASTER's pooled memory.</param>
    public int ReadMany<TVisitor>(ReadOnlySpan<long> keys, int slotBytes, ref TVisitor visitor) where TVisitor : IRecordVisitor, allows ref struct
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (keys.IsEmpty) return 0;
        // Reads go out in windows: FASTER keeps a pooled I/O buffer per read in flight, so the window bounds that pool.
        int window = Math.Min(keys.Length, ReadWindow);
        long need = (long)window * slotBytes;
        var buf = t_batchBuffer;
        if (buf is null || buf.LongLength < need)
            t_batchBuffer = buf = GC.AllocateUninitializedArray<byte>((int)Math.Min(int.MaxValue, Math.Max(need, 2L * (buf?.LongLength ?? 0))), pinned: true);
        byte* basePtr = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(buf));
        if (!_readers.TryTake(out var s)) s = NewSession();
        int found = 0;
        try
        {
            for (int w0 = 0; w0 < keys.Length; w0 += window)
            {
                var part = keys.Slice(w0, Math.Min(window, keys.Length - w0));
                int pending = 0;
                for (int i = 0; i < part.Length; i++)
                {
                    long key = part[i];
                    var ks = SpanByte.FromPointer((byte*)&key, 8);
                    var output = new SpanByteAndMemory(basePtr + (long)i * slotBytes, slotBytes);
                    var st = s.Read(ref ks, ref output);
                    if (st.IsPending)
                    {
                        pending++;
                    }
                    else if (st.Found)
                    {
                        Deliver(w0 + i, ref output, ref visitor);
                        found++;
                    }
                }
                if (pending == 0) continue;
                Interlocked.Add(ref _pendingReads, pending);
                s.CompletePendingWithOutputs(out var outputs, wait: true);
                using (outputs)
                {
                    while (outputs.Next())
                    {
                        ref var c = ref outputs.Current;
                        if (!c.Status.Found)
                        {
                            c.Output.Memory?.Dispose();
                            continue;
                        }
                        int i;
                        var output = c.Output;
                        if (output.IsSpanByte)
                            i = (int)(((byte*)output.SpanByte.ToPointer() - basePtr) / slotBytes);
                        else
                            i = part.IndexOf(BitConverter.ToInt64(c.Key.AsReadOnlySpan()));
                        if ((uint)i >= (uint)part.Length) throw new InvalidOperationException("Record store: a completed read matches no requested key.");
                        Deliver(w0 + i, ref output, ref visitor);
                        found++;
                    }
                }
            }
            return found;
        }
        finally
        {
            _readers.Add(s);
        }
    }

    /// <summary>Reads in flight at once in <see cref="ReadMany"/>.</summary>
    private const int ReadWindow = 256;

    private static void Deliver<TVisitor>(int index, ref SpanByteAndMemory output, ref TVisitor visitor) where TVisitor : IRecordVisitor, allows ref struct
    {
        if (output.IsSpanByte)
        {
            visitor.Visit(index, output.SpanByte.AsReadOnlySpan());
            return;
        }
        using var owner = output.Memory;
        visitor.Visit(index, owner!.Memory.Span[..output.Length]);
    }

    /// <summary>Every live record (key, value); run on the applier thread or before writes start.</summary>
    public IEnumerable<(long Key, byte[] Value)> Scan()
    {
        using var s = NewSession();
        using var it = s.Iterate();
        while (it.GetNext(out _))
        {
            ref var k = ref it.GetKey();
            if (k.Length != 8) throw new AdannsException(AdannsErrorCode.Corrupt, $"Record store: a key of {k.Length} bytes (expected 8).");
            long key = BitConverter.ToInt64(k.AsReadOnlySpan());
            yield return (key, it.GetValue().AsReadOnlySpan().ToArray());
        }
    }

    /// <summary>Takes a full fold-over checkpoint and waits for it; returns its token.</summary>
    public Guid Checkpoint()
    {
        var (ok, token) = _kv.TakeFullCheckpointAsync(CheckpointType.FoldOver).AsTask().GetAwaiter().GetResult();
        if (!ok) throw new InvalidOperationException("The record store could not start a checkpoint (one is already running).");
        return token;
    }

    /// <summary>Deletes checkpoint folders other than <paramref name="keep"/>.</summary>
    public void RemoveCheckpointsExcept(Guid keep)
    {
        foreach (var sub in new[] { "cpr-checkpoints", "index-checkpoints" })
        {
            var dir = Path.Combine(_checkpointDir, sub);
            if (!Directory.Exists(dir)) continue;
            foreach (var d in Directory.GetDirectories(dir))
                if (!string.Equals(Path.GetFileName(d), keep.ToString(), StringComparison.OrdinalIgnoreCase))
                    Directory.Delete(d, recursive: true);
        }
    }

    /// <summary>
    /// Moves live records out of the older part of the log and truncates it, freeing whole segments on disk.
    /// Returns the bytes the log shrank by.
    /// </summary>
    public long Compact()
    {
        long before = LogBytes;
        // Records still in the mutable region cannot be compacted: make the whole log read-only first (it is flushed,
        // as a checkpoint would); writers meanwhile append after it.
        _kv.Log.ShiftReadOnlyAddress(_kv.Log.TailAddress, wait: true);
        long until = _kv.Log.SafeReadOnlyAddress;
        if (until <= _kv.Log.BeginAddress) return 0;
        _maintenance.Compact(until, CompactionType.Scan);
        _kv.Log.Truncate();
        return before - LogBytes;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Interlocked.MemoryBarrier(); // pairs with the increment-then-check in ReadAsync: either it sees _disposed, or we see it in flight
        var spin = new SpinWait();
        while (Volatile.Read(ref _asyncReads) > 0) spin.SpinOnce(sleep1Threshold: 20);
        while (_readers.TryTake(out var s)) s.Dispose();
        _writer.Dispose();
        _maintenance.Dispose();
        _kv.Dispose();
        _device.Dispose();
    }
}

/// <summary>Receives the records of <see cref="RecordStore.ReadMany"/>.</summary>
internal interface IRecordVisitor
{
    /// <summary>The record at position <paramref name="index"/> of the requested keys; <paramref name="value"/> is valid only during the call.</summary>
    void Visit(int index, ReadOnlySpan<byte> value);
}
