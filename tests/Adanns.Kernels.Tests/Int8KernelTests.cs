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
}
