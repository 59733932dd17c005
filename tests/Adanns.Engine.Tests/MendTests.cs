using Adanns.Engine.Clustering;
using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// Issue 14's mends: a filter that throws leaves no per-thread state behind (the Spill scans' seen-slot bits), and the
/// single-writer rule is enforced where breaking it would free native memory under a running search.
/// </summary>
public class MendTests
{
    private const int N = 2000, NQ = 20, K = 10, D = IvfTestData.D;

    private static IVectorIndex Build(string spec, VectorSet b) =>
        VectorIndex.Build(b, spec, Metric.Cosine, new VectorIndexBuildOptions(
            new IvfBuildOptions(new KMeansOptions(MaxIterations: 6, Seed: 3)),
            new PqBuildOptions(new KMeansOptions(MaxIterations: 6, Seed: 3), PqIterations: 6, TrainingSample: N), Threads: 1));

    /// <summary>Accepts every id until <see cref="ThrowAfter"/> calls, then throws.</summary>
    private sealed class CountingFilter : IIdFilter
    {
        public int Calls;
        public int ThrowAfter = int.MaxValue;

        public bool Accept(long id)
        {
            if (++Calls > ThrowAfter) throw new InvalidOperationException("filter failed");
            return true;
        }
    }

    [Theory]
    [InlineData("IVF32@32,Scan32,SQ8,Spill,Shortlist60,Rerank64")]
    [InlineData("IVF32@32,Scan32,Spill,Shortlist60,Rerank64")]
    [InlineData("IVF32@32,PQ16@32,Spill,Shortlist60,Rerank64")]
    [InlineData("Rot,IVF32@32,PQ32x4@32,Spill,Shortlist60,Rerank64")]
    [InlineData("IVF32@32,RQ1@64,Spill,Shortlist60,Rerank64")]
    public void AThrowingFilterLeavesTheNextSearchesUnchanged(string spec)
    {
        var (b, queries) = IvfTestData.Make(seed: 11, n: N, nq: NQ);
        using var owned = b;
        using var index = Build(spec, b);
        var p = new SearchParams { NProbe = 16 };
        // Each query's results with an accept-all filter and with none, before any filter threw (same thread: the
        // seen-slot bits live in this thread's scratch).
        var ids = new long[K];
        var scores = new float[K];
        var before = new List<(long[], float[])>();
        var filter = new CountingFilter();
        for (int i = 0; i < NQ; i++)
        {
            var q = queries.AsSpan(i * D, D);
            index.Search(q, K, ids, scores, p, filter, out _);
            before.Add((ids.ToArray(), scores.ToArray()));
            index.Search(q, K, ids, scores, p, null, out _);
            before.Add((ids.ToArray(), scores.ToArray()));
        }

        // Every query once more, each first through a search whose filter throws midway through its scan.
        for (int i = 0; i < NQ; i++)
        {
            var q = queries.AsSpan(i * D, D);
            var failing = new CountingFilter { ThrowAfter = 40 };
            Assert.Throws<InvalidOperationException>(() => index.Search(queries.AsSpan(i * D, D), K, new long[K], new float[K], p, failing, out _));
            index.Search(q, K, ids, scores, p, new CountingFilter(), out _);
            Assert.Equal(before[2 * i].Item1, ids);
            Assert.Equal(before[2 * i].Item2, scores);
            Assert.Throws<InvalidOperationException>(() => index.Search(queries.AsSpan(i * D, D), K, new long[K], new float[K], p, new CountingFilter { ThrowAfter = 40 }, out _));
            index.Search(q, K, ids, scores, p, null, out _);
            Assert.Equal(before[2 * i + 1].Item1, ids);
            Assert.Equal(before[2 * i + 1].Item2, scores);
        }
    }

    [Theory]
    [InlineData("IVF32@32,Scan32,SQ8,Rerank64")]
    [InlineData("IVF32@32,PQ32x4@32,Spill,Prefix8@48,Shortlist60,Rerank48/30,Rerank64")]
    public void TheRotationsMultiplyAddsAreCountedInFlops(string spec)
    {
        var (b, queries) = IvfTestData.Make(seed: 13, n: N, nq: NQ);
        using var owned = b;
        using var plain = Build(spec, b);
        using var rotated = Build("Rot," + spec, b);
        var exact = new SearchParams { Exact = true };
        // Exact search scores every live vector at D: N·D multiply-adds, plus D·D for the query's rotation.
        plain.Search(queries.AsSpan(0, D), K, new long[K], new float[K], exact, null, out var ps);
        rotated.Search(queries.AsSpan(0, D), K, new long[K], new float[K], exact, null, out var rs);
        Assert.Equal((long)N * D, ps.Flops);
        Assert.Equal((long)N * D + (long)D * D, rs.Flops);
        rotated.SearchBatch(queries, K, exact, null, 2, out var bs);
        Assert.Equal(NQ * ((long)N * D + (long)D * D), bs.Flops);
    }

    /// <summary>Blocks inside a search (in the filter) until released, so a mutation can be tried while it runs.</summary>
    private sealed class BlockingFilter : IIdFilter, IDisposable
    {
        public readonly ManualResetEventSlim Entered = new(), Release = new();

        public bool Accept(long id)
        {
            Entered.Set();
            Release.Wait(TimeSpan.FromSeconds(30));
            return true;
        }

        public void Dispose()
        {
            Entered.Dispose();
            Release.Dispose();
        }
    }

    [Fact]
    public async Task MutationsThatFreeNativeRowsThrowWhileASearchRuns()
    {
        var (b, queries) = IvfTestData.Make(seed: 12, n: N, nq: 1);
        using var owned = b;
        using var index = (IvfIndex)Build("IVF32@32,Scan32,SQ8,Rerank64", b);
        Assert.True(index.Remove(5));
        // Rows that cannot fit the resident rows' buffer: their add would move (and free) it.
        using var more = new VectorSet(D, N);
        for (int i = 0; i < N; i++) more.Add(b.Row(i));
        var extraIds = Enumerable.Range(0, N).Select(i => 100_000L + i).ToArray();

        using var blocking = new BlockingFilter();
        var search = Task.Run(() => index.Search(queries.AsSpan(0, D), K, new long[K], new float[K], new SearchParams { NProbe = 4 }, blocking, out _));
        Assert.True(blocking.Entered.Wait(TimeSpan.FromSeconds(30)));
        try
        {
            Assert.Contains("Compact", Assert.Throws<InvalidOperationException>(() => index.Compact()).Message, StringComparison.Ordinal);
            Assert.Contains("Add", Assert.Throws<InvalidOperationException>(() => index.AddRange(more, extraIds, threads: 1)).Message, StringComparison.Ordinal);
            Assert.Throws<InvalidOperationException>(() => index.UseExternalVectors(new RowSource(b)));
            Assert.Throws<InvalidOperationException>(() => index.Dispose());
        }
        finally
        {
            blocking.Release.Set();
            await search.WaitAsync(TimeSpan.FromSeconds(30));
        }
        // Nothing was changed by the refused calls, and once the search is over they run.
        Assert.Equal(N - 1, index.Count);
        Assert.False(index.Contains(100_000));
        Assert.Equal(1, index.TombstoneCount);
        index.AddRange(more, extraIds, threads: 1);
        index.Compact();
        Assert.Equal(2 * N - 1, index.Count);
        var ids = new long[1];
        index.Search(b.Row(7), 1, ids, new float[1], new SearchParams { NProbe = 32 });
        Assert.True(ids[0] is 7 or 100_007, $"nearest {ids[0]}");
    }
}
