using System.Diagnostics;

namespace Adanns.Engine.Collections;

/// <summary>
/// Backpressure (issue 20): the writes a running training has not absorbed yet are journaled with a copy of each
/// vector, and until its fresh index is swapped in an untrained collection's exact store holds them too. Ingest faster
/// than the training would grow both without bound (a 10M × 128 ingest passed 16 GB while its first training caught
/// up). So the journal's unabsorbed bytes — the index backlog — are counted, and while they exceed
/// <see cref="DatabaseOptions.MaxIndexBacklogBytes"/> new writes wait, first come first served and before anything is
/// logged, until the training's replay brings the backlog under the budget (or its swap clears it). A write that waits
/// longer than <see cref="DatabaseOptions.BackpressureTimeout"/> fails with <see cref="AdannsErrorCode.Overloaded"/>
/// (nothing written; retryable), one whose caller cancels fails with cancellation, and closing or a fault fail them at
/// once. Acknowledged writes are never affected: the wait is before the log. With an infinite timeout (cluster replicas,
/// which must log their shard's writes in sequence, so none may fail out of turn) writes wait until the index catches up.
/// </summary>
public sealed partial class Collection
{
    private long _backlogBytes;
    private int _throttledWriters;
    private TaskCompletionSource _backlogEased = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Throttled writers go one at a time, in arrival order (SemaphoreSlim releases async waiters first in, first out).</summary>
    private readonly SemaphoreSlim _admission = new(1, 1);

    /// <summary>Bytes a journaled add holds until replayed: the vector copy plus the entry and array overheads.</summary>
    private long JournalOpBytes => 4L * Dimension + 48;

    /// <summary>Bytes of journaled vectors a running training has not absorbed yet (diagnostics, tests).</summary>
    internal long IndexBacklogBytes => Interlocked.Read(ref _backlogBytes);

    /// <summary>Writes waiting for the backlog now (diagnostics, tests).</summary>
    internal int ThrottledWriters => Volatile.Read(ref _throttledWriters);

    private bool OverBudget => Interlocked.Read(ref _backlogBytes) > _options.MaxIndexBacklogBytes;

    /// <summary>A write must wait: the backlog is over budget, or earlier writes still wait (they go first).</summary>
    private bool MustThrottle => OverBudget || Volatile.Read(ref _throttledWriters) > 0;

    private void BacklogAdded(long bytes) => Interlocked.Add(ref _backlogBytes, bytes);

    private void BacklogReleased(long bytes)
    {
        if (bytes != 0) Interlocked.Add(ref _backlogBytes, -bytes);
        SignalBacklog();
    }

    private void BacklogCleared()
    {
        Interlocked.Exchange(ref _backlogBytes, 0);
        SignalBacklog();
    }

    /// <summary>Wakes the throttled writers to look again (a no-op while the backlog stays over budget and nothing else changed).</summary>
    private void SignalBacklog()
    {
        if (OverBudget && !_closed && _faulted is null) return;
        Interlocked.Exchange(ref _backlogEased, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>
    /// A write that arrived while the index backlog was over budget (or others waited): waits its turn, then for the
    /// backlog, then logs it like any write. Nothing is logged before the wait ends, so a timeout, a cancellation or a
    /// close leaves nothing behind.
    /// </summary>
    private async Task<int> SubmitThrottledAsync(WriteBatch batch, byte[] entry, bool wait, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        var timeout = _options.BackpressureTimeout;
        Interlocked.Increment(ref _throttledWriters);
        Task<int> logged;
        try
        {
            if (!await _admission.WaitAsync(timeout, cancellationToken).ConfigureAwait(false)) throw Overloaded(timeout);
            try
            {
                while (true)
                {
                    if (_faulted is not null) throw FaultedError();
                    if (_closed) throw new AdannsException(AdannsErrorCode.Closed, $"Collection \"{Name}\" is closed.");
                    var eased = Volatile.Read(ref _backlogEased).Task; // taken before the check: a release after it completes this task
                    if (!OverBudget) break;
                    var left = timeout == Timeout.InfiniteTimeSpan ? timeout : timeout - Stopwatch.GetElapsedTime(started);
                    if (left <= TimeSpan.Zero && left != Timeout.InfiniteTimeSpan) throw Overloaded(timeout);
                    try { await eased.WaitAsync(left, cancellationToken).ConfigureAwait(false); }
                    catch (TimeoutException) { throw Overloaded(timeout); }
                }
                logged = Enqueue(batch, entry, wait);
            }
            finally { _admission.Release(); }
        }
        catch (AdannsException e) when (e.Code == AdannsErrorCode.Overloaded)
        {
            _metrics.Throttled(Name, admitted: false);
            throw;
        }
        finally { Interlocked.Decrement(ref _throttledWriters); }
        _metrics.Throttled(Name, admitted: true);
        return await logged.ConfigureAwait(false);
    }

    private AdannsException Overloaded(TimeSpan waited) => new(AdannsErrorCode.Overloaded,
        $"Collection \"{Name}\": the index is {IndexBacklogBytes / 1048576.0:0.0} MiB of writes behind (MaxIndexBacklogBytes {_options.MaxIndexBacklogBytes / 1048576.0:0.0} MiB) and did not catch up within {waited.TotalSeconds:0.###} s (BackpressureTimeout); nothing was written, retry later.");
}
