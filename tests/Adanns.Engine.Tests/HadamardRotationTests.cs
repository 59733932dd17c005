using Adanns.Engine.Transforms;
using Adanns.Kernels;

namespace Adanns.Engine.Tests;

/// <summary>
/// RaBitQ's structured rotation: orthogonal for power-of-two and other dims (norms and inner products preserved, PᵀP = I),
/// every output mixing every input, seeded and deterministic, and rebuilt bit for bit from its stored signs.
/// </summary>
public class HadamardRotationTests
{
    private static float[] Gaussian(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return x;
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(128)]
    [InlineData(384)]
    [InlineData(392)]
    [InlineData(784)]
    public void ItIsOrthogonal(int d)
    {
        var p = HadamardRotation.Create(d, seed: 11);
        Assert.Equal(d, p.Dimension);
        Assert.Equal(HadamardKernels.IsPowerOfTwo(d) ? 1 : 2, p.Blocks);
        // PᵀP = I: the columns (P applied to unit vectors) are orthonormal.
        var m = p.ToMatrix();
        var cols = new float[d][];
        for (int j = 0; j < d; j++)
        {
            cols[j] = new float[d];
            for (int i = 0; i < d; i++) cols[j][i] = m[i * d + j];
        }
        for (int a = 0; a < d; a += Math.Max(1, d / 40))
            for (int b = 0; b < d; b++)
                Assert.Equal(a == b ? 1.0 : 0.0, Dot(cols[a], cols[b]), 1e-5);
        // Norms and inner products of random vectors are preserved.
        var rng = new Random(d);
        for (int t = 0; t < 20; t++)
        {
            var x = Gaussian(rng, d);
            var y = Gaussian(rng, d);
            var px = new float[d];
            var py = new float[d];
            p.Apply(x, px);
            p.Apply(y, py);
            Assert.Equal(Dot(x, x), Dot(px, px), 1e-4 * d);
            Assert.Equal(Dot(x, y), Dot(px, py), 1e-4 * d);
            // In place gives the same values as out of place.
            var inPlace = x.ToArray();
            p.ApplyInPlace(inPlace);
            Assert.Equal(px, inPlace);
        }
    }

    [Theory]
    [InlineData(384)]
    [InlineData(392)]
    [InlineData(100)]
    [InlineData(256)]
    public void EveryOutputMixesEveryInput(int d)
    {
        // After the default rounds P looks like a dense random rotation: hardly any zero entries (a structured transform
        // can cancel to exactly 0 now and then; measured in numpy over random signs, 3 rounds: 0–2.5% of entries) and no
        // entry dominating (a Haar matrix's largest |entry| is about √(2 ln(d²)/d); observed here ≤ 5.5/√d).
        var m = HadamardRotation.Create(d, seed: 5).ToMatrix();
        double zeros = m.Count(v => v == 0f) / (double)m.Length;
        Assert.True(zeros < 0.05, $"{zeros:P2} of the entries are 0 for d = {d}");
        float max = m.Max(MathF.Abs);
        Assert.True(max * MathF.Sqrt(d) < 8, $"largest |entry| {max} = {max * MathF.Sqrt(d):F2}/√d for d = {d}");
        if (!HadamardKernels.IsPowerOfTwo(d))
        {
            // One round leaves the first d − n outputs blind to the last d − n inputs: the check above sees it.
            var one = HadamardRotation.Create(d, seed: 5, rounds: 1).ToMatrix();
            Assert.True(one.Count(v => v == 0f) / (double)one.Length >= 0.05);
        }
    }

    [Fact]
    public void ItIsSeededAndRebuiltFromItsSigns()
    {
        var a = HadamardRotation.Create(384, seed: 3);
        var b = HadamardRotation.Create(384, seed: 3);
        var c = HadamardRotation.Create(384, seed: 4);
        Assert.Equal(a.Negative.ToArray(), b.Negative.ToArray());
        Assert.NotEqual(a.Negative.ToArray(), c.Negative.ToArray());
        Assert.Equal(HadamardRotation.SignCount(384, HadamardRotation.DefaultRounds), a.Negative.Length);
        // About half the signs are negative.
        int negative = a.Negative.ToArray().Count(s => s == 1);
        Assert.InRange(negative, a.Negative.Length * 0.45, a.Negative.Length * 0.55);
        var copy = HadamardRotation.FromSigns(384, a.Rounds, a.Negative);
        Assert.Equal(a.ToMatrix(), copy.ToMatrix());
    }

    [Fact]
    public void BadPartsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => HadamardRotation.Create(1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => HadamardRotation.Create(16, 1, rounds: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => HadamardRotation.Create(16, 1, rounds: HadamardRotation.MaxRounds + 1));
        Assert.Throws<ArgumentException>(() => HadamardRotation.FromSigns(16, 1, new byte[15]));
        var signs = new byte[HadamardRotation.SignCount(24, 2)];
        signs[7] = 2;
        var e = Assert.Throws<ArgumentException>(() => HadamardRotation.FromSigns(24, 2, signs));
        Assert.Contains("sign 7", e.Message);
        var p = HadamardRotation.Create(24, 1);
        Assert.Throws<ArgumentException>(() => p.Apply(new float[24], new float[23]));
    }
}
