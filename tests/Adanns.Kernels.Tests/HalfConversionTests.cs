namespace Adanns.Kernels.Tests;

public class HalfConversionTests
{
    [Fact]
    public void ConvertsEveryLengthLikeTheScalarCast()
    {
        var rng = new Random(8);
        foreach (int n in Reference.Lengths())
        {
            var halves = Enumerable.Range(0, n).Select(_ => (Half)(rng.NextDouble() * 200 - 100)).ToArray();
            var dst = new float[n];
            HalfConversion.ToSingle(halves, dst);
            for (int i = 0; i < n; i++)
                Assert.Equal((float)halves[i], dst[i]);
        }
    }

    [Fact]
    public void ConvertsSpecialValuesAndRawBytes()
    {
        var halves = new[] { Half.PositiveInfinity, Half.NegativeInfinity, Half.Epsilon, Half.MaxValue, (Half)(-0.0f), (Half)1.5f };
        var bytes = new byte[halves.Length * 2];
        for (int i = 0; i < halves.Length; i++)
            BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), halves[i]);
        var dst = new float[halves.Length];
        HalfConversion.ToSingle(bytes, dst);
        for (int i = 0; i < halves.Length; i++)
            Assert.Equal((float)halves[i], dst[i]);
        Assert.Throws<ArgumentException>(() => HalfConversion.ToSingle(new byte[3], new float[2]));
    }

    [Fact]
    public void RoundTripsThroughHalf()
    {
        var src = new[] { 0f, 1f, -2.5f, 65504f, 1e-4f };
        var h = new Half[src.Length];
        HalfConversion.ToHalf(src, h);
        var back = new float[src.Length];
        HalfConversion.ToSingle(h, back);
        for (int i = 0; i < src.Length; i++)
            Assert.Equal((float)(Half)src[i], back[i]);
    }
}
