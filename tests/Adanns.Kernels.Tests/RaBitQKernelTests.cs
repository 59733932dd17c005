namespace Adanns.Kernels.Tests;

public class RaBitQKernelTests
{
    /// <summary>Random b-bit codes of n rows × d dims packed with a stride holding 4 extra words per block (factors).</summary>
    private static (byte[] Values, ulong[] Blocks, int Stride) Codes(Random rng, int n, int d, int bits)
    {
        int words = RaBitQKernels.Words(d), stride = RaBitQKernels.PlaneUlongs(bits, words) + 4;
        var values = new byte[n * d];
        for (int i = 0; i < values.Length; i++) values[i] = (byte)rng.Next(1 << bits);
        var blocks = new ulong[RaBitQKernels.Blocks(n) * stride];
        for (int r = 0; r < n; r++) RaBitQKernels.WriteRow(blocks, stride, bits, words, r, values.AsSpan(r * d, d));
        return (values, blocks, stride);
    }

    [Theory]
    [InlineData(1, 1, 1, 4)]
    [InlineData(7, 63, 1, 4)]
    [InlineData(8, 64, 1, 4)]
    [InlineData(9, 65, 2, 8)]
    [InlineData(33, 128, 1, 4)]
    [InlineData(40, 192, 4, 8)]
    [InlineData(17, 384, 1, 4)]
    [InlineData(17, 384, 2, 8)]
    [InlineData(23, 130, 3, 8)]
    [InlineData(16, 100, 8, 8)]
    [InlineData(5, 200, 4, 5)]
    public void ScanEqualsTheIntegerSumOnEveryPath(int n, int d, int bits, int queryBits)
    {
        var rng = new Random(n * 1009 + d * 7 + bits);
        var (values, blocks, stride) = Codes(rng, n, d, bits);
        int words = RaBitQKernels.Words(d);
        var levels = new byte[d];
        for (int j = 0; j < d; j++) levels[j] = (byte)rng.Next(1 << queryBits);
        var planes = new ulong[queryBits * words];
        RaBitQKernels.QueryPlanes(levels, queryBits, words, planes);
        int nb = RaBitQKernels.Blocks(n);
        var fast = new int[nb * 8];
        var scalar = new int[nb * 8];
        RaBitQKernels.Scan(blocks, stride, bits, words, nb, planes, queryBits, fast);
        RaBitQKernels.ScanScalar(blocks, stride, bits, words, nb, planes, queryBits, scalar);
        for (int r = 0; r < n; r++)
        {
            int expect = 0;
            for (int j = 0; j < d; j++) expect += values[r * d + j] * levels[j];
            Assert.Equal(expect, scalar[r]);
            Assert.Equal(expect, fast[r]);
        }
        for (int r = n; r < nb * 8; r++) Assert.Equal(0, fast[r]); // rows past n in the last block are zero codes
    }

    [Theory]
    [InlineData(1, 64)]
    [InlineData(4, 130)]
    [InlineData(8, 7)]
    public void RowsReadBackAsWritten(int bits, int d)
    {
        var rng = new Random(bits * 31 + d);
        var (values, blocks, stride) = Codes(rng, 21, d, bits);
        var back = new byte[d];
        for (int r = 0; r < 21; r++)
        {
            RaBitQKernels.ReadRow(blocks, stride, bits, RaBitQKernels.Words(d), r, back);
            Assert.Equal(values.AsSpan(r * d, d).ToArray(), back);
        }
    }

    [Fact]
    public void QuantizedQueryIsWithinHalfAStep()
    {
        var rng = new Random(3);
        var q = new float[97];
        for (int j = 0; j < q.Length; j++) q[j] = (float)(rng.NextDouble() * 2 - 0.7);
        foreach (int bits in new[] { 1, 4, 8 })
        {
            var levels = new byte[q.Length];
            float delta = RaBitQKernels.QuantizeQuery(q, bits, levels, out float lo);
            Assert.Equal(q.Min(), lo);
            for (int j = 0; j < q.Length; j++)
            {
                Assert.True(levels[j] < 1 << bits);
                Assert.True(MathF.Abs(lo + delta * levels[j] - q[j]) <= delta / 2 + 1e-5f, $"bits {bits} dim {j}");
            }
        }
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(63, 8)]
    [InlineData(128, 4)]
    [InlineData(130, 8)]
    [InlineData(384, 5)]
    public void QuantizeToPlanesEqualsTheTwoScalarSteps(int d, int bits)
    {
        var rng = new Random(d + bits);
        var q = new float[d];
        for (int j = 0; j < d; j++) q[j] = (float)(rng.NextDouble() - 0.4);
        int words = RaBitQKernels.Words(d);
        var levels = new byte[d];
        float delta = RaBitQKernels.QuantizeQuery(q, bits, levels, out float lo);
        var planes = new ulong[bits * words];
        RaBitQKernels.QueryPlanes(levels, bits, words, planes);
        var fastLevels = new byte[words * 64];
        var fastPlanes = new ulong[bits * words];
        float fastDelta = RaBitQKernels.QuantizeToPlanes(q, bits, words, new float[d], fastLevels, fastPlanes, out float fastLo);
        Assert.Equal(delta, fastDelta);
        Assert.Equal(lo, fastLo);
        Assert.Equal(levels, fastLevels.AsSpan(0, d).ToArray());
        Assert.Equal(planes, fastPlanes);
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        var planes = new ulong[4];
        var sums = new int[8];
        var codes = new ulong[8];
        Assert.Throws<ArgumentOutOfRangeException>(() => RaBitQKernels.Scan(codes, 8, 0, 1, 1, planes, 4, sums));
        Assert.Throws<ArgumentException>(() => RaBitQKernels.Scan(codes, 4, 1, 1, 1, planes, 4, sums)); // stride below a block
        Assert.Throws<ArgumentException>(() => RaBitQKernels.Scan(codes, 8, 1, 1, 2, planes, 4, sums)); // too few codes
        Assert.Throws<ArgumentException>(() => RaBitQKernels.Scan(codes, 8, 1, 1, 1, planes, 5, sums)); // too few query words
    }
}
