using FASTER.core;

namespace Adanns.Engine.Storage;

internal sealed partial class RecordStore
{
    private int _asyncReads;

    /// <summary>
    /// The record under <paramref name="key"/>, or null, read without blocking a thread: a record on disk completes
    /// through FASTER's asynchronous I/O. Safe from any thread. <see cref="Dispose"/> waits for reads in flight.
    /// </summary>
    public async Task<byte[]?> ReadAsync(long key)
    {
        Interlocked.Increment(ref _asyncReads);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_readers.TryTake(out var s)) s = NewSession();
            try
            {
                var pending = StartRead(s, key);
                var result = pending.IsCompleted ? pending.Result : await pending.ConfigureAwait(false);
                var (status, output) = result.Complete();
                return status.Found ? Copy(ref output) : null;
            }
            finally
            {
                _readers.Add(s); // only after the read completed: a session serves one operation at a time
            }
        }
        finally
        {
            Interlocked.Decrement(ref _asyncReads);
        }
    }
}
