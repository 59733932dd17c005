using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// The two-phase PQ search (shortlist under the caller's lock, rerank with rows the caller read): the same ids and
/// scores as the one-call search, for every rerank shape (float stages, the 8-bit Prefix8 stage, a rotation, a filter).
/// </summary>
public class PqTwoPhaseSearchTests
{
    private sealed class RowSource(VectorSet rows) : IVectorSource
    {
        public int Dimension => rows.Dimension;

        public void Read(ReadOnlySpan<long> ids, Span<float> destination)
        {
            for (int i = 0; i < ids.Length; i++)
                rows.Row(checked((int)ids[i])).CopyTo(destination.Slice(i * Dimension, Dimension));
        }
    }

    private sealed class OddIds : IIdFilter
    {
        public bool Accept(long id) => id % 2 == 1;
    }

    [Theory]
    [InlineData("IVF16@16,OPQ8@32,NProbe4,Rerank64", Metric.L2, false)]
    [InlineData("Rot,IVF32@16,OPQ8@32,Resid,NProbe6,Shortlist100,Rerank48/40,Rerank64", Metric.L2, false)]
    [InlineData("Rot,OPQ8@32,Shortlist80,Rerank64", Metric.Cosine, true)]
    [InlineData("IVF16@16,PQ16x4@32,Spill,Prefix8@32,NProbe4,Shortlist60,Rerank32/20,Rerank64", Metric.InnerProduct, false)]
    [InlineData("IVF16@16,SQ8,Prefix8@32,NProbe4,Shortlist60,Rerank32/20,Rerank64", Metric.L2, true)]
    public void TwoPhaseEqualsOneCall(string spec, Metric metric, bool filtered)
    {
        var (b, q) = IvfTestData.Make(n: 2000, nq: 30);
        using var owned = b;
        var index = IvfIndex.Build(b, IndexSpec.Parse(spec), metric, PqIndexTests.Fast);
        var source = new RowSource(b);
        index.UseExternalVectors(source);
        IIdFilter? filter = filtered ? new OddIds() : null;
        const int k = 10;
        int D = b.Dimension;
        var r = index.Resolve(null, k);
        Assert.True(index.RerankReadsSource(r));
        var ids1 = new long[k];
        var s1 = new float[k];
        var cand = new long[r.Shortlist];
        var candKeys = new float[r.Shortlist];
        var positions = new long[k];
        var s2 = new float[k];
        int compared = 0;
        for (int i = 0; i < 30; i++)
        {
            var query = q.AsSpan(i * D, D);
            index.Search(query, k, ids1, s1, null, filter, out var one);
            int n = index.SearchShortlist(query, k, r, filter, cand, candKeys, out int firstStage, out var two);
            var rows = new float[n * D];
            source.Read(cand.AsSpan(0, n), rows);
            index.RerankShortlist(query, k, r, firstStage, candKeys.AsSpan(0, n), rows, positions, s2, ref two);
            for (int j = 0; j < k; j++)
            {
                Assert.Equal(ids1[j], positions[j] < 0 ? -1 : cand[positions[j]]);
                Assert.Equal(s1[j], s2[j]);
                if (ids1[j] >= 0) compared++;
            }
            Assert.Equal(one.VectorsReranked, two.VectorsReranked);
            Assert.Equal(one.Flops, two.Flops);
        }
        Assert.True(compared >= 30 * k / 2, $"only {compared} hits compared");
    }

    [Fact]
    public void TwoPhaseIsRefusedWhereItDoesNotApply()
    {
        var (b, _) = IvfTestData.Make(n: 500, nq: 1);
        using var owned = b;
        var resident = IvfIndex.Build(b, IndexSpec.Parse("IVF8@16,PQ8@32,NProbe4,Rerank64"), Metric.L2, PqIndexTests.Fast);
        var r = resident.Resolve(null, 10);
        Assert.False(resident.RerankReadsSource(r)); // rows are resident: the one-call search reads no source
        Assert.Throws<InvalidOperationException>(() => resident.SearchShortlist(new float[b.Dimension], 10, r, null, new long[r.Shortlist], new float[r.Shortlist], out _, out _));
    }
}
