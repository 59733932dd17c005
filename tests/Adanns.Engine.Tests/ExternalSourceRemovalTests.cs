using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// A codes-only index (full vectors in an external source, as in a collection) whose probes rank the lists' running
/// means: removals must not make searches re-read the whole source (issue 20: every search after a delete read every
/// vector from the record store, under the collection's read lock, so writers waited on it).
/// </summary>
public class ExternalSourceRemovalTests
{
    private sealed class CountingSource(VectorSet rows) : IVectorSource
    {
        public long RowsRead;

        public int Dimension => rows.Dimension;

        public void Read(ReadOnlySpan<long> ids, Span<float> destination)
        {
            Interlocked.Add(ref RowsRead, ids.Length);
            for (int i = 0; i < ids.Length; i++) rows.Row(checked((int)ids[i])).CopyTo(destination.Slice(i * Dimension, Dimension));
        }
    }

    [Theory]
    [InlineData("IVF16,NProbe4,Rerank64")]     // plain float lists: every probe ranks the running means
    [InlineData("IVF16,SQ8,NProbe4,Rerank64")] // SQ8 lists, the same
    public void SearchesAfterRemovalsReadOnlyTheirShortlists_CompactRecomputesTheMeans(string spec)
    {
        const int N = 2000, NQ = 20, K = 10, D = 64;
        var (b, q) = IvfTestData.Make(n: N, nq: NQ);
        using var owned = b;
        using var resident = IvfIndex.Build(b, IndexSpec.Parse(spec), Metric.Cosine, PqIndexTests.Fast);
        using var external = IvfIndex.Build(b, IndexSpec.Parse(spec), Metric.Cosine, PqIndexTests.Fast);
        var source = new CountingSource(b);
        external.UseExternalVectors(source);
        int shortlist = external.Resolve(null, K).Shortlist;
        var ids = new long[K];
        var scores = new float[K];
        var removed = new HashSet<long>();
        for (long id = 0; id < N; id += 7)
        {
            Assert.True(external.Remove(id));
            Assert.True(resident.Remove(id));
            removed.Add(id);
        }

        long before = source.RowsRead;
        for (int i = 0; i < NQ; i++)
        {
            external.Search(q.AsSpan(i * D, D), K, ids, scores);
            Assert.All(ids, id => Assert.DoesNotContain(id, removed));
        }
        long read = source.RowsRead - before;
        // Each query reads at most its shortlist; before the fix the first search after a removal re-read all 1,714 live rows.
        Assert.True(read <= (long)NQ * shortlist, $"{read} rows read by {NQ} searches (shortlist {shortlist})");

        // Compact drops the removed rows from the means: it reads each live row once, and the index then searches exactly
        // as the resident one, whose means subtracted each removed row as it went.
        before = source.RowsRead;
        external.Compact();
        resident.Compact();
        Assert.Equal(N - removed.Count, source.RowsRead - before);
        var r = resident.SearchBatch(q, K, null, null, 1, out _);
        var e = external.SearchBatch(q, K, null, null, 1, out _);
        Assert.Equal(r.Ids, e.Ids);
        Assert.Equal(r.Scores, e.Scores);
    }
}
