using FASTER.core;

namespace Adanns.Engine.Storage;

/// <summary>
/// The write-ahead log of one collection: a FASTER log with a checksum on every entry. Entries are enqueued by
/// writers and made durable by <see cref="Commit"/>, which the collection's applier calls once for every group
/// of pending writes (group commit).
/// </summary>
internal sealed class WriteAheadLog : IDisposable
{
    private readonly IDevice _device;
    private readonly FasterLog _log;

    /// <summary>Page size; one entry (a whole batch) must fit in a page.</summary>
    public const int PageBytes = 1 << 22;

    /// <summary>Largest entry accepted (a page less FASTER's entry header and slack).</summary>
    public const int MaxEntryBytes = PageBytes - 64;

    public WriteAheadLog(string directory)
    {
        Directory.CreateDirectory(directory);
        _device = Devices.CreateLogDevice(Path.Combine(directory, "wal.log"), recoverDevice: true);
        _log = new FasterLog(new FasterLogSettings
        {
            LogDevice = _device,
            LogCommitDir = directory,
            PageSize = PageBytes,
            MemorySize = 4L * PageBytes,
            SegmentSize = 1L << 24, // 16 MiB: truncation after a checkpoint frees whole segments
            LogChecksum = LogChecksumType.PerEntry,
        });
    }

    /// <summary>First address still in the log.</summary>
    public long BeginAddress => _log.BeginAddress;

    /// <summary>Address after the last enqueued entry.</summary>
    public long TailAddress => _log.TailAddress;

    /// <summary>Address up to which entries are durable.</summary>
    public long CommittedUntilAddress => _log.CommittedUntilAddress;

    /// <summary>Appends an entry (not yet durable); returns its address. Thread-safe.</summary>
    public long Enqueue(byte[] entry) => _log.Enqueue(entry);

    /// <summary>Appends a copy of <paramref name="entry"/> (the caller may reuse its buffer on return); returns its address.</summary>
    public long Enqueue(ReadOnlySpan<byte> entry) => _log.Enqueue(entry);

    /// <summary>
    /// Makes every entry enqueued so far durable and waits for it. Blocks without spinning (Commit(spinWait: true)
    /// yields in a loop, which on a 2-core machine starved the I/O completion it waits for while searches ran).
    /// </summary>
    public void Commit() => _log.CommitAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Committed entries from <paramref name="from"/> on, with their addresses.</summary>
    public IEnumerable<(long Address, byte[] Entry)> Read(long from)
    {
        using var it = _log.Scan(Math.Max(from, _log.BeginAddress), long.MaxValue, scanUncommitted: false);
        while (it.GetNext(out byte[] entry, out int length, out long address))
            yield return (address, length == entry.Length ? entry : entry[..length]);
    }

    /// <summary>Drops entries before <paramref name="address"/> (they are in a checkpoint); durable at the next commit.</summary>
    public void TruncateUntil(long address)
    {
        if (address > _log.BeginAddress) _log.TruncateUntil(address);
    }

    public void Dispose()
    {
        _log.Dispose();
        _device.Dispose();
    }
}
