using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Cli;

/// <summary>
/// One import: batches of rows written with a few writes in flight (so the server's or engine's group commit
/// overlaps the next batch's preparation). Resuming, each batch first asks which ids are stored and writes only
/// the others. Cancellation stops issuing writes; those in flight still complete, so what was acknowledged is
/// stored and a re-run picks up after it.
/// </summary>
internal sealed class ImportRun(IAdannsCollection collection, VectorSet vectors, ulong[] ids, int batch, bool resume)
{
    private const int InFlight = 4;

    public long Imported { get; private set; }

    public long Skipped { get; private set; }

    public bool Cancelled { get; private set; }

    public async Task RunAsync(Action<double> progress, CancellationToken ct)
    {
        int n = ids.Length;
        var pending = new Queue<(Task Write, int Count)>();
        long done = 0;
        try
        {
            for (int start = 0; start < n; start += batch)
            {
                if (ct.IsCancellationRequested)
                {
                    Cancelled = true;
                    break;
                }
                int m = Math.Min(batch, n - start);
                var batchIds = new RecordId[m];
                for (int i = 0; i < m; i++) batchIds[i] = ids[start + i];
                IReadOnlyList<bool>? stored = resume ? await collection.ExistAsync(batchIds, CancellationToken.None).ConfigureAwait(false) : null;
                var records = new List<VectorRecord>(m);
                for (int i = 0; i < m; i++)
                {
                    if (stored is not null && stored[i]) continue;
                    records.Add(new VectorRecord(batchIds[i], vectors.Row(start + i).ToArray()));
                }
                Skipped += m - records.Count;
                done += m - records.Count;
                if (records.Count > 0)
                    pending.Enqueue((collection.UpsertAsync(records, wait: true, CancellationToken.None), records.Count));
                while (pending.Count >= InFlight) done += await Complete(pending).ConfigureAwait(false);
                progress(done);
            }
        }
        finally
        {
            while (pending.Count > 0)
            {
                done += await Complete(pending).ConfigureAwait(false);
                progress(done);
            }
        }
    }

    private async Task<int> Complete(Queue<(Task Write, int Count)> pending)
    {
        var (write, count) = pending.Dequeue();
        await write.ConfigureAwait(false);
        Imported += count;
        return count;
    }
}
