using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels.Tests;

public class Int8KernelTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(8, 4)]
    [InlineData(33, 17)]
    [InlineData(64, 64)]
    [InlineData(100, 128)]
    [InlineData(2048, 130)]
    public void DotEqualsTheIntegerSumForWholeAndPrefixQueries(int n, int d)
    {
        var rng = new Random(n * 131 + d);
        var rows = new byte[n * d];
        rng.NextBytes(rows);
        var packed = new byte[Int8Kernels.PackedBytes(n, d)];
        Int8Kernels.Pack(rows, n, d, packed);
        int padded = (n + 7) / 8 * 8;
        foreach (int dq in new[] { d, Math.Max(1, d / 2), Math.Max(1, d - 1) }.Distinct())
        {
            var q = new sbyte[dq];
            for (int j = 0; j < dq; j++) q[j] = (sbyte)rng.Next(-127, 128);
            var dots = new int[padded];
            Int8Kernels.Dot(q, packed, n, d, dots);
            for (int i = 0; i < n; i++)
            {
                int expect = 0;
                for (int j = 0; j < dq; j++) expect += rows[i * d + j] * q[j];
                Assert.Equal(expect, dots[i]);
            }
            for (int i = n; i < padded; i++) Assert.Equal(0, dots[i]); // padding rows are zero codes
        }
    }

    [Fact]
    public void ScalarPathMatchesTheDispatchedOne()
    {
        var rng = new Random(5);
        int n = 77, d = 45;
        var rows = new byte[n * d];
        rng.NextBytes(rows);
        var packed = new byte[Int8Kernels.PackedBytes(n, d)];
        Int8Kernels.Pack(rows, n, d, packed);
        var q = new sbyte[d];
        for (int j = 0; j < d; j++) q[j] = (sbyte)rng.Next(-127, 128);
        var a = new int[80];
        Int8Kernels.Dot(q, packed, n, d, a);
        var qq = new int[12];
        for (int t = 0; t < 12; t++)
            for (int u = 0; u < 4; u++)
                if (4 * t + u < d) qq[t] |= (byte)q[4 * t + u] << (8 * u);
        var b = new int[80];
        Int8Kernels.DotScalar(qq, packed, 10, 12, b);
        Assert.Equal(b, a);
    }

    [Fact]
    public void QuantizeMapsTheLargestMagnitudeTo127()
    {
        var q = new[] { 0.5f, -2f, 1f, 0f };
        var qi = new sbyte[4];
        float scale = Int8Kernels.Quantize(q, qi);
        Assert.Equal(63.5f, scale);
        Assert.Equal(new sbyte[] { 32, -127, 64, 0 }, qi);
        Assert.Equal(1f, Int8Kernels.Quantize(new float[3], qi));
        Assert.Throws<ArgumentException>(() => Int8Kernels.Dot(new sbyte[5], new byte[32], 8, 4, new int[8]));
        Assert.Throws<ArgumentException>(() => Int8Kernels.Dot(new sbyte[4], new byte[16], 8, 4, new int[8]));
    }

    [Fact]
    public void GatheredRowDotsEqualIntegerSums()
    {
        // Every query length around the 32- and 64-byte steps, rows gathered in any order (repeats too), against plain
        // integer sums; the scalar path must agree as well.
        var rng = new Random(12);
        const int stride = 200, n = 50;
        var table = new byte[n * stride];
        rng.NextBytes(table);
        foreach (int d in new[] { 1, 3, 31, 32, 33, 63, 64, 65, 96, 127, 128, 192, 200 })
        {
            var q = new sbyte[d];
            for (int j = 0; j < d; j++) q[j] = (sbyte)rng.Next(-127, 128);
            int[] which = [7, 0, 49, 7, 23, 1, 48, 12, 3];
            var dots = new int[which.Length];
            var scalar = new int[which.Length];
            Int8Kernels.DotRows(q, table, stride, which, dots);
            Int8Kernels.DotRowsScalar(q, table, stride, which, scalar);
            for (int i = 0; i < which.Length; i++)
            {
                int expect = 0;
                for (int j = 0; j < d; j++) expect += table[which[i] * stride + j] * q[j];
                Assert.Equal(expect, dots[i]);
                Assert.Equal(expect, scalar[i]);
            }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8Kernels.DotRows(new sbyte[8], table, stride, [n], new int[1]));
        Assert.Throws<ArgumentException>(() => Int8Kernels.DotRows(new sbyte[201], table, stride, [0], new int[1]));
        Assert.Throws<ArgumentException>(() => Int8Kernels.DotRows(new sbyte[8], table, stride, [0, 1], new int[1]));
    }
    // Every dot-product path this CPU runs (the dispatched one included), each checked against plain integer sums.
    private static IEnumerable<(string Name, Action<sbyte[], byte[], int, int, int[]> Dot)> PackedPaths()
    {
        yield return ("dispatch", (q, packed, n, d, dots) => Int8Kernels.Dot(q, packed, n, d, dots));
        yield return ("scalar", (q, packed, n, d, dots) => Int8Kernels.DotScalar(Quads(q), packed, (n + 7) / 8, Int8Kernels.PaddedDims(d) / 4, dots));
        if (Avx512BW.IsSupported)
            yield return ("avx512bw", (q, packed, n, d, dots) => Int8Kernels.Dot512(Widened(q), packed, (n + 7) / 8, Int8Kernels.PaddedDims(d) / 4, dots));
        if (Avx2.IsSupported)
            yield return ("avx2", (q, packed, n, d, dots) => Int8Kernels.Dot256(Widened(q), packed, (n + 7) / 8, Int8Kernels.PaddedDims(d) / 4, dots));
    }

    private static IEnumerable<(string Name, Action<sbyte[], byte[], int, int[], int[]> Dot)> RowPaths()
    {
        yield return ("dispatch", (q, rows, stride, which, dots) => Int8Kernels.DotRows(q, rows, stride, which, dots));
        yield return ("scalar", (q, rows, stride, which, dots) => Int8Kernels.DotRowsScalar(q, rows, stride, which, dots));
        if (Avx512BW.IsSupported)
            yield return ("avx512bw", (q, rows, stride, which, dots) => Int8Kernels.DotRows512(q, rows, stride, which, dots));
        if (Avx2.IsSupported)
            yield return ("avx2", (q, rows, stride, which, dots) => Int8Kernels.DotRows256(q, rows, stride, which, dots));
    }

    private static int[] Quads(sbyte[] q)
    {
        var qq = new int[Int8Kernels.PaddedDims(q.Length) / 4];
        for (int j = 0; j < q.Length; j++) qq[j / 4] |= (byte)q[j] << (8 * (j % 4));
        return qq;
    }

    private static long[] Widened(sbyte[] q)
    {
        var qq = Quads(q);
        var qw = new long[qq.Length];
        Int8Kernels.WidenQuads(qq, qw);
        return qw;
    }

    // Lengths 1..2,048: every one up to 130 (all quad, 16-, 32- and 64-dim tails) and a sample above, with the ends.
    public static TheoryData<int> Lengths()
    {
        var data = new TheoryData<int>();
        var rng = new Random(2048);
        var set = new SortedSet<int>(Enumerable.Range(1, 130)) { 191, 192, 193, 255, 256, 257, 383, 384, 385, 511, 512, 1023, 1024, 2047, 2048 };
        while (set.Count < 170) set.Add(rng.Next(131, 2049));
        foreach (int d in set) data.Add(d);
        return data;
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void EveryPackedPathEqualsTheIntegerSum(int d)
    {
        // Row counts around the 2- and 4-block steps of the vector loops (padding rows must come out zero), whole
        // and prefix queries, random values and the extremes (codes 255 × query -128: no int16 saturation anywhere).
        var rng = new Random(d);
        int n = new[] { 1, 8, 9, 23, 40, 65 }[d % 6];
        int padded = (n + 7) / 8 * 8;
        foreach (bool extreme in new[] { false, true })
        {
            var rows = new byte[n * d];
            if (extreme) Array.Fill(rows, (byte)255); else rng.NextBytes(rows);
            var packed = new byte[Int8Kernels.PackedBytes(n, d)];
            Int8Kernels.Pack(rows, n, d, packed);
            foreach (int dq in new[] { d, Math.Max(1, d - 1), Math.Max(1, d / 3) }.Distinct())
            {
                var q = new sbyte[dq];
                for (int j = 0; j < dq; j++) q[j] = extreme ? (j % 5 == 4 ? (sbyte)127 : (sbyte)-128) : (sbyte)rng.Next(-128, 128);
                var expect = new int[padded];
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < dq; j++) expect[i] += rows[i * d + j] * q[j];
                foreach (var (name, dot) in PackedPaths())
                {
                    var dots = new int[padded];
                    Array.Fill(dots, 12345);
                    dot(q, packed, n, d, dots);
                    Assert.True(expect.AsSpan().SequenceEqual(dots), $"{name}: d {d}, prefix {dq}, {n} rows, extreme {extreme}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void EveryGatherPathEqualsTheIntegerSum(int d)
    {
        // Rows gathered in any order (repeats too, the last row of the table included) from a table whose stride is
        // wider than the query; random values and the extremes.
        var rng = new Random(d + 7);
        int stride = d + d % 3, n = 40;
        var which = new int[29];
        for (int i = 0; i < which.Length; i++) which[i] = rng.Next(n);
        which[3] = n - 1;
        which[9] = which[4];
        foreach (bool extreme in new[] { false, true })
        {
            var table = new byte[n * stride];
            if (extreme) Array.Fill(table, (byte)255); else rng.NextBytes(table);
            var q = new sbyte[d];
            for (int j = 0; j < d; j++) q[j] = extreme ? (sbyte)-128 : (sbyte)rng.Next(-128, 128);
            var expect = new int[which.Length];
            for (int i = 0; i < which.Length; i++)
                for (int j = 0; j < d; j++) expect[i] += table[which[i] * stride + j] * q[j];
            foreach (var (name, dot) in RowPaths())
            {
                var dots = new int[which.Length];
                dot(q, table, stride, which, dots);
                Assert.True(expect.AsSpan().SequenceEqual(dots), $"{name}: d {d}, stride {stride}, extreme {extreme}");
            }
        }
    }

    [Fact]
    public void VectorPathsRunWhereTheCpuHasThemAndAllocateNothing()
    {
        Assert.Equal(AvxVnni.IsSupported || Avx512BW.IsSupported || Avx2.IsSupported, Int8Kernels.IsAccelerated);
        Assert.Equal(AvxVnni.IsSupported ? "avx-vnni" : Avx512BW.IsSupported ? "avx512bw" : Avx2.IsSupported ? "avx2" : "scalar", Int8Kernels.Path);
        var rng = new Random(3);
        int n = 2048, d = 128, stride = 192;
        var rows = new byte[n * stride];
        rng.NextBytes(rows);
        var packed = new byte[Int8Kernels.PackedBytes(n, d)];
        Int8Kernels.Pack(rows, n, d, packed);
        var q = new sbyte[192];
        for (int j = 0; j < q.Length; j++) q[j] = (sbyte)rng.Next(-127, 128);
        var which = Enumerable.Range(0, 150).Select(_ => rng.Next(n)).ToArray();
        var sums = new int[n];
        var dots = new int[which.Length];
        var scaled = new float[192];
        for (int j = 0; j < scaled.Length; j++) scaled[j] = (float)rng.NextDouble() - 0.5f;
        Int8Kernels.Dot(q.AsSpan(0, d), packed, n, d, sums);
        Int8Kernels.DotRows(q, rows, stride, which, dots);
        Int8Kernels.Quantize(scaled, q);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int rep = 0; rep < 10; rep++)
        {
            Int8Kernels.Quantize(scaled, q);
            Int8Kernels.Dot(q.AsSpan(0, d), packed, n, d, sums);
            Int8Kernels.DotRows(q, rows, stride, which, dots);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
