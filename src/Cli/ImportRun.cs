using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.IO;
using Adanns.Engine.Storage;

namespace Adanns.Cli;

/// <summary>
/// One import: the file is streamed in chunks (<see cref="VectorFile.ReadVectorChunks"/>, a few MiB at a time, so a
/// file larger than memory imports), each chunk cut into batches written with a few writes in flight (so the
/// server's or engine's group commit overlaps the next batch's preparation). Resuming, each batch first asks which
/// ids are stored and writes only the others. Cancellation stops issuing writes; those in flight still complete, so
/// what was acknowledged is stored and a re-run picks up after it.
/// </summary>
internal sealed class ImportRun(IAdannsCollection collection, IEnumerable<VectorChunk> chunks, ulong[] ids, int batch, bool resume)
{
    private const int InFlight = 4;

    public long Imported { get; private set; }

    public long Skipped { get; private set; }

    public bool Cancelled { get; private set; }

    public async Task RunAsync(Action<double> progress, CancellationToken ct)
    {
        var pending = new Queue<(Task Write, int Count)>();
        long done = 0;
        try
        {
            foreach (var chunk in chunks)
            {
                for (int offset = 0; offset < chunk.Count; offset += batch)
                {
                    if (ct.IsCancellationRequested)
                    {
                        Cancelled = true;
                        return;
                    }
                    int m = Math.Min(batch, chunk.Count - offset);
                    long first = chunk.FirstRow + offset;
                    var batchIds = new RecordId[m];
                    for (int i = 0; i < m; i++) batchIds[i] = ids[first + i];
                    IReadOnlyList<bool>? stored = resume ? await collection.ExistAsync(batchIds, CancellationToken.None).ConfigureAwait(false) : null;
                    var records = new List<VectorRecord>(m);
                    for (int i = 0; i < m; i++)
                    {
                        if (stored is not null && stored[i]) continue;
                        // A copy: the chunk's buffer is reused for the next chunk while this write may still be in flight.
                        records.Add(new VectorRecord(batchIds[i], chunk.Row(offset + i).ToArray()));
                    }
                    Skipped += m - records.Count;
                    done += m - records.Count;
                    if (records.Count > 0)
                        pending.Enqueue((collection.UpsertAsync(records, wait: true, CancellationToken.None), records.Count));
                    while (pending.Count >= InFlight) done += await Complete(pending).ConfigureAwait(false);
                    progress(done);
                }
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
