using Adanns.Engine.Clustering;
using Adanns.Engine.Indexes;
using Adanns.Engine.Quantization;
using Adanns.Kernels;

namespace Adanns.Engine.Tests;

/// <summary>4-bit PQ codes (<c>PQ{m}x4</c>) scanned with the in-register fast-scan kernel.</summary>
/// <remarks>Recall, monotonicity, add/remove/compact, allocation and save/load cases for 4-bit specs are rows of the
/// PQ index theories in PqIndexTests; this class holds what only 4-bit codes have.</remarks>
public sealed class FastScanPqTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void FourBitAdcEqualsTheDistanceToTheDecodedVectorAndEncodingPicksTheNearestCentroid()
    {
        const int n = 1200, d = 32, m = 16;
        var x = TestData.RandomRows(n, d, 11);
        var pq = ProductQuantizer.Train(x, n, d, m, new KMeansOptions(MaxIterations: 6, Seed: 2, Threads: 1), bits: 4);
        Assert.Equal(4, pq.Bits);
        Assert.Equal(16, pq.Ksub);
        Assert.Equal(8, pq.CodeBytes);
        var q = TestData.RandomRows(10, d, 12);
        var lut = new float[m * 16];
        var code = new byte[m];
        var rec = new float[d];
        var scratch = new float[m * 16];
        for (int i = 0; i < 10; i++)
        {
            var qi = q.AsSpan(i * d, d);
            var xi = x.AsSpan(i * d, d);
            pq.Encode(xi, code, scratch);
            Assert.All(code, c => Assert.InRange(c, (byte)0, (byte)15));
            pq.Decode(code, rec);
            pq.ComputeTable(qi, innerProduct: true, lut);
            float ip = 0;
            for (int j = 0; j < m; j++) ip += lut[j * 16 + code[j]];
            Assert.Equal(VectorMath.Dot(qi, rec), ip, 3);
            pq.ComputeTable(qi, innerProduct: false, lut);
            float l2 = 0;
            for (int j = 0; j < m; j++) l2 += lut[j * 16 + code[j]];
            Assert.Equal(VectorMath.L2Squared(qi, rec), l2 + VectorMath.NormSquared(qi), 3);
            // Nearest sub-centroid: no other value of any single sub-quantizer reconstructs x better.
            float best = VectorMath.L2Squared(xi, rec);
            var alt = (byte[])code.Clone();
            var altRec = new float[d];
            for (int j = 0; j < m; j++)
                for (int c = 0; c < 16; c++)
                {
                    alt[j] = (byte)c;
                    pq.Decode(alt, altRec);
                    Assert.True(VectorMath.L2Squared(xi, altRec) >= best - 1e-4f);
                    alt[j] = code[j];
                }
        }
        Assert.Throws<ArgumentException>(() => ProductQuantizer.Train(x, n, d, 7, bits: 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ProductQuantizer.Train(x, n, d, 8, bits: 2));
    }

    [Fact]
    public void FastScanShortlistMatchesFloatAdcUpToTableQuantization()
    {
        // The fast-scan keys are the float ADC sums with each table entry rounded to 1/255 of the widest row: the
        // candidates it ranks first must be (nearly) those float ADC ranks first.
        var (b, q) = IvfTestData.Make(n: 2000, nq: 40);
        using var owned = b;
        var index = IvfIndex.Build(b, IndexSpec.Parse("PQ32x4@64"), Metric.InnerProduct, PqIndexTests.Fast);
        var codes = new byte[32];
        var rec = new float[64];
        var lut = new float[32 * 16];
        var ids = new long[10];
        var scores = new float[10];
        int agree = 0;
        for (int i = 0; i < 40; i++)
        {
            var qi = q.AsSpan(i * 64, 64);
            index.Quantizer!.ComputeTable(qi, innerProduct: true, lut);
            // Float ADC over every row, via the decoded vectors.
            var adc = new (float Score, long Id)[b.Count];
            for (int r = 0; r < b.Count; r++)
            {
                index.Quantizer!.Encode(b.Row(r), codes, new float[32 * 16]);
                index.Quantizer!.Decode(codes, rec);
                adc[r] = (VectorMath.Dot(qi, rec), r);
            }
            var top = adc.OrderByDescending(a => a.Score).Take(10).Select(a => a.Id).ToHashSet();
            index.Search(qi, 10, ids, scores, new SearchParams { Rerank = [] }, out _);
            agree += ids.Count(top.Contains);
            // Scores without rerank are the ADC estimate: within half a table step per sub-quantizer of the float ADC.
            index.Quantizer!.Encode(b.Row((int)ids[0]), codes, new float[32 * 16]);
            index.Quantizer!.Decode(codes, rec);
            float range = 0;
            for (int j = 0; j < 32; j++)
                range = Math.Max(range, lut.AsSpan(j * 16, 16).ToArray().Max() - lut.AsSpan(j * 16, 16).ToArray().Min());
            float tolerance = 32 * 0.5f * range / 255 + 1e-4f;
            Assert.True(Math.Abs(VectorMath.Dot(qi, rec) - scores[0]) <= tolerance, $"query {i}: {scores[0]} vs {VectorMath.Dot(qi, rec)} (± {tolerance})");
        }
        output.WriteLine($"fast-scan top-10 vs float ADC top-10 overlap: {agree / 400.0:F3}");
        Assert.True(agree >= 0.9 * 400, $"overlap {agree / 400.0:F3}"); // observed 0.968
    }



    [Theory]
    [InlineData("IVF32@32,PQ32x4@64,Rerank64", 8, 60)]  // probed lists' sums estimated and collected at once
    [InlineData("IVF32@32,PQ32x4@64,Rerank64", 32, 400)] // every list
    [InlineData("PQ16x4@64,Rerank64", 1, 150)]           // flat: one list of every row
    [InlineData("IVF32@32,PQ32x4@64,Spill,Rerank64", 6, 60)] // second copies: each vector offered once on both paths
    public void SharedTableScanKeepsExactlyWhatTheStreamingScanKeeps(string spec, int nprobe, int shortlist)
    {
        // Without a filter, non-residual codes take the shared-table path (all sums, then one selection); a filter that
        // accepts everything forces the streaming reservoir path. Both must keep the same shortlist, so every result
        // matches exactly — with rerank and without (the sorted ADC shortlist itself), tombstones included.
        var (b, q) = IvfTestData.Make(n: 3000, nq: 30);
        using var owned = b;
        var index = IvfIndex.Build(b, IndexSpec.Parse(spec), Metric.InnerProduct, PqIndexTests.Fast);
        for (long id = 0; id < 3000; id += 7) Assert.True(index.Remove(id));
        const int k = 10;
        var all = new AcceptAll();
        foreach (var p in new[]
                 {
                     new SearchParams { NProbe = nprobe, Shortlist = shortlist },
                     new SearchParams { NProbe = nprobe, Shortlist = shortlist, Rerank = [] },
                 })
        {
            for (int i = 0; i < 30; i++)
            {
                var qi = q.AsSpan(i * 64, 64);
                var (ids1, sc1, ids2, sc2) = (new long[k], new float[k], new long[k], new float[k]);
                index.Search(qi, k, ids1, sc1, p, null, out var shared);
                index.Search(qi, k, ids2, sc2, p, all, out var streamed);
                Assert.Equal(ids2, ids1);
                Assert.Equal(sc2, sc1);
                Assert.Equal(streamed.VectorsScanned, shared.VectorsScanned);
                Assert.Equal(streamed.VectorsReranked, shared.VectorsReranked);
                Assert.DoesNotContain(ids1, id => id % 7 == 0 && id >= 0);
                Assert.Equal(k, ids1.Distinct().Count());
            }
        }
    }

    private sealed class AcceptAll : IIdFilter
    {
        public bool Accept(long id) => true;
    }

    [Fact]
    public void CodesTakeHalfTheBytesOfEightBitCodes()
    {
        var (b, _) = IvfTestData.Make();
        using var owned = b;
        var four = IvfIndex.Build(b, IndexSpec.Parse("IVF16@16,PQ16x4@32,Rerank64"), Metric.Cosine, PqIndexTests.Fast);
        var eight = IvfIndex.Build(b, IndexSpec.Parse("IVF16@16,PQ16@32,Rerank64"), Metric.Cosine, PqIndexTests.Fast);
        Assert.Equal(8, four.CodeBytes);
        Assert.Equal(16, eight.CodeBytes);
        // Codebooks are 16x smaller too; list slack is padding to 32-row blocks. Observed 50.5 vs 80.7.
        output.WriteLine($"resident bytes/vector: PQ16x4 {four.ResidentBytesPerVector:F1}, PQ16 {eight.ResidentBytesPerVector:F1}");
        Assert.True(four.ResidentBytesPerVector < eight.ResidentBytesPerVector - 8);
    }

    [Theory]
    [InlineData("PQ32x4@64")]
    [InlineData("Rot,IVF1024@64,OPQ64x4@128,Resid,NProbe32,Shortlist200,Rerank384")]
    public void SpecsRoundTrip(string text)
    {
        var spec = IndexSpec.Parse(text);
        Assert.Equal(4, spec.PqBits);
        Assert.Equal(text, spec.ToString());
        Assert.Equal(spec, IndexSpec.Parse(spec.ToString()));
        Assert.NotEqual(spec, IndexSpec.Parse(text.Replace("x4", "", StringComparison.Ordinal)));
        Assert.Equal(8, IndexSpec.Parse("PQ32x8@64").PqBits);
        Assert.Equal("PQ32@64", IndexSpec.Parse("PQ32x8@64").ToString());
    }

}
