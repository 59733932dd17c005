using Adanns.Kernels;
using Adanns.Kernels.Gpu;

namespace Adanns.Gpu.Tests;

/// <summary>Each GPU kernel against the CPU kernels on small inputs (hundreds of rows: the CPU accelerator is a simulator).</summary>
public class KernelTests
{
    private static float CpuKey(KeyKind kind, ReadOnlySpan<float> q, ReadOnlySpan<float> x)
    {
        float dot = VectorMath.Dot(q, x);
        float n2 = VectorMath.NormSquared(x);
        return kind switch
        {
            KeyKind.L2 => n2 - 2 * dot,
            KeyKind.Cosine => -dot / MathF.Sqrt(n2),
            _ => -dot,
        };
    }

    private static float[] Terms(float[] rows, int n, int stride, int d, KeyKind kind)
    {
        var t = new float[n];
        for (int r = 0; r < n; r++)
        {
            float n2 = VectorMath.NormSquared(rows.AsSpan(r * stride, d));
            t[r] = kind == KeyKind.L2 ? n2 : 1f / MathF.Sqrt(n2);
        }
        return t;
    }

    [Theory]
    [InlineData(KeyKind.InnerProduct)]
    [InlineData(KeyKind.L2)]
    [InlineData(KeyKind.Cosine)]
    public void DistanceMatrixMatchesCpuAtAPrefix(KeyKind kind)
    {
        // 13 queries × 150 rows at d = 37 of D = 40: no dimension is a multiple of the tile, rows start at 5.
        const int nq = 13, n = 155, D = 40, d = 37, start = 5, count = 150;
        var dev = TestDevice.Device;
        var rows = TestDevice.Gaussian(n, D, 1);
        var queries = TestDevice.Gaussian(nq, d, 2);
        using var rb = GpuBuffer<float>.Upload(dev, rows);
        using var tb = kind == KeyKind.InnerProduct ? null : GpuBuffer<float>.Upload(dev, Terms(rows, n, D, d, kind));
        var keys = new float[nq * count];
        GpuSearch.DistanceKeys(dev, queries, d, rb, D, start, count, kind, tb, keys);
        for (int i = 0; i < nq; i++)
            for (int r = 0; r < count; r++)
            {
                float want = CpuKey(kind, queries.AsSpan(i * d, d), rows.AsSpan((start + r) * D, d));
                Assert.True(Math.Abs(want - keys[i * count + r]) <= 1e-4f * Math.Max(1, Math.Abs(want)),
                    $"query {i} row {r}: {keys[i * count + r]} vs {want}");
            }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(37)]
    public void TopKSelectionEqualsCpuHeapWithTiesAndNaN(int k)
    {
        const int segments = 7, len = 300;
        var rng = new Random(k);
        // Keys on a coarse grid: many exact ties, broken by the lower position on both sides.
        var keys = new float[segments * len];
        for (int i = 0; i < keys.Length; i++) keys[i] = rng.Next(40) * 0.25f - 3f;
        keys[5] = float.NaN;
        keys[len + 7] = float.PositiveInfinity;
        var outK = new float[segments * k];
        var outI = new int[segments * k];
        GpuSearch.SelectTopK(TestDevice.Device, keys, len, k, outK, outI);
        for (int s = 0; s < segments; s++)
        {
            var (wantK, wantI) = TestDevice.CpuTopK(keys.AsSpan(s * len, len), k);
            Assert.Equal(wantI, TestDevice.Widen(outI.AsSpan(s * k, k)));
            Assert.Equal(wantK, outK.AsSpan(s * k, k).ToArray());
        }
    }

    [Fact]
    public void OneLongSegmentIsReducedInSeveralPasses()
    {
        // 1 segment of 3,000 keys: the selection splits it over many threads, then merges their lists in passes.
        var keys = TestDevice.Gaussian(1, 3000, 17);
        for (int i = 0; i < keys.Length; i += 7) keys[i] = MathF.Round(keys[i], 1); // some exact ties
        var outK = new float[5];
        var outI = new int[5];
        GpuSearch.SelectTopK(TestDevice.Device, keys, keys.Length, 5, outK, outI);
        var (wantK, wantI) = TestDevice.CpuTopK(keys, 5);
        Assert.Equal(wantI, TestDevice.Widen(outI));
        Assert.Equal(wantK, outK);
    }

    [Fact]
    public void TopKPadsShortSegments()
    {
        var keys = new float[] { 3, float.NaN, 1, 2 };
        var outK = new float[6];
        var outI = new int[6];
        GpuSearch.SelectTopK(TestDevice.Device, keys, 4, 6, outK, outI);
        Assert.Equal(new[] { 2, 3, 0, -1, -1, -1 }, outI);
        Assert.Equal(new[] { 1f, 2f, 3f, float.PositiveInfinity, float.PositiveInfinity, float.PositiveInfinity }, outK);
    }

    [Theory]
    [InlineData(KeyKind.InnerProduct, 10, 40)]
    [InlineData(KeyKind.L2, 10, 130)]
    [InlineData(KeyKind.Cosine, 1, 40)]
    [InlineData(KeyKind.L2, GpuDevice.MaxK, 40)]
    public void NearestRowsEqualsCpuBruteForce(KeyKind kind, int k, int nq)
    {
        // 300 rows in two row chunks on the simulator's budget; 130 queries in three query batches.
        const int n = 300, D = 24, d = 20;
        var dev = TestDevice.Device;
        var rows = TestDevice.Gaussian(n, D, 3);
        var queries = TestDevice.Gaussian(nq, d, 4);
        using var rb = GpuBuffer<float>.Upload(dev, rows);
        using var tb = kind == KeyKind.InnerProduct ? null : GpuBuffer<float>.Upload(dev, Terms(rows, n, D, d, kind));
        var outK = new float[nq * k];
        var outI = new int[nq * k];
        GpuSearch.Nearest(dev, queries, d, rb, D, n, kind, tb, k, outK, outI);
        var all = new float[n];
        for (int i = 0; i < nq; i++)
        {
            for (int r = 0; r < n; r++) all[r] = CpuKey(kind, queries.AsSpan(i * d, d), rows.AsSpan(r * D, d));
            var (wantK, wantI) = TestDevice.CpuTopK(all, k);
            TestDevice.AssertSameTopK(wantK, wantI, outK.AsSpan(i * k, k), TestDevice.Widen(outI.AsSpan(i * k, k)), 1e-4f, $"query {i}");
        }
    }

    [Fact]
    public void ListScanEqualsCpuBruteForceOverTheProbedLists()
    {
        // 6 lists of assorted sizes (one empty, one with a tombstone), 9 queries probing 3 lists each.
        const int nlist = 6, D = 20, d = 18, nq = 9, nprobe = 3, sl = 12;
        int[] sizes = [37, 0, 16, 50, 5, 33];
        var dev = TestDevice.Device;
        var layout = TileLayout.BlockMajor(D);
        var rowsOf = new float[nlist][];
        var blocks = new float[nlist][];
        var live = new bool[nlist][];
        for (int l = 0; l < nlist; l++)
        {
            rowsOf[l] = TestDevice.Gaussian(sizes[l], D, 10 + l);
            blocks[l] = new float[(sizes[l] + 15) / 16 * layout.BlockStride];
            live[l] = Enumerable.Repeat(true, sizes[l]).ToArray();
            for (int r = 0; r < sizes[l]; r++) InterleavedKernels.WriteRow(blocks[l], layout, r, rowsOf[l].AsSpan(r * D, D));
        }
        live[3][4] = false;
        live[4][1] = false;
        using var store = new GpuListStore(dev, D, default, default, nlist, l => new GpuListData(sizes[l], blocks[l], default, live[l]));
        var queries = TestDevice.Gaussian(nq, d, 99);
        var rng = new Random(5);
        var probes = new int[nq * nprobe];
        for (int i = 0; i < nq; i++)
        {
            // Distinct lists per query (as a coarse quantizer yields), sometimes fewer than nprobe (−1).
            var pick = Enumerable.Range(0, nlist).OrderBy(_ => rng.Next()).Take(nprobe).ToArray();
            if (i % 2 == 0) pick[2] = -1;
            pick.CopyTo(probes, i * nprobe);
        }
        // Query 0 probes only the 5-row list holding a tombstone: 4 results, then padding (the tombstone takes no place).
        probes[0] = 4;
        probes[1] = probes[2] = -1;
        foreach (var kind in new[] { KeyKind.InnerProduct, KeyKind.L2, KeyKind.Cosine })
        {
            var outK = new float[nq * sl];
            var outS = new int[nq * sl];
            store.Scan(queries, d, probes, nprobe, kind, sl, outK, outS);
            var slotStart = new int[nlist + 1];
            for (int l = 0; l < nlist; l++) slotStart[l + 1] = slotStart[l] + sizes[l];
            for (int i = 0; i < nq; i++)
            {
                var keys = new float[slotStart[nlist]];
                Array.Fill(keys, float.NaN); // rows of lists not probed never enter
                for (int j = 0; j < nprobe; j++)
                {
                    int l = probes[i * nprobe + j];
                    if (l < 0) continue;
                    for (int r = 0; r < sizes[l]; r++)
                        keys[slotStart[l] + r] = live[l][r] ? CpuKey(kind, queries.AsSpan(i * d, d), rowsOf[l].AsSpan(r * D, d)) : float.NaN;
                }
                var (wantK, wantI) = TestDevice.CpuTopK(keys, sl);
                TestDevice.AssertSameTopK(wantK, wantI, outK.AsSpan(i * sl, sl), TestDevice.Widen(outS.AsSpan(i * sl, sl)), 1e-4f, $"{kind} query {i}");
            }
        }
    }

    [Fact]
    public void QuantizedListScanDecodesCodes()
    {
        const int D = 16, n = 40, nq = 3, sl = 5;
        var dev = TestDevice.Device;
        var layout = TileLayout.BlockMajor(D);
        var rng = new Random(8);
        var codes = new byte[(n + 15) / 16 * layout.BlockStride];
        var lo = Enumerable.Range(0, D).Select(j => -1f + 0.01f * j).ToArray();
        var step = Enumerable.Range(0, D).Select(j => 2f / 255 * (1 + 0.1f * j)).ToArray();
        var decoded = new float[n * D];
        for (int r = 0; r < n; r++)
        {
            var c = new byte[D];
            rng.NextBytes(c);
            InterleavedKernels.WriteRow(codes, layout, r, c);
            for (int j = 0; j < D; j++) decoded[r * D + j] = lo[j] + step[j] * c[j];
        }
        using var store = new GpuListStore(dev, D, lo, step, 1, _ => new GpuListData(n, default, codes, Enumerable.Repeat(true, n).ToArray()));
        var queries = TestDevice.Gaussian(nq, D, 3);
        var outK = new float[nq * sl];
        var outS = new int[nq * sl];
        store.Scan(queries, D, new int[nq], 1, KeyKind.L2, sl, outK, outS);
        for (int i = 0; i < nq; i++)
        {
            var keys = new float[n];
            for (int r = 0; r < n; r++) keys[r] = CpuKey(KeyKind.L2, queries.AsSpan(i * D, D), decoded.AsSpan(r * D, D));
            var (wantK, wantI) = TestDevice.CpuTopK(keys, sl);
            TestDevice.AssertSameTopK(wantK, wantI, outK.AsSpan(i * sl, sl), TestDevice.Widen(outS.AsSpan(i * sl, sl)), 1e-4f, $"query {i}");
        }
    }
}
