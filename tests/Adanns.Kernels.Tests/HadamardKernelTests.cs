using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels.Tests;

/// <summary>The fast Walsh–Hadamard transform: every vector path gives the scalar reference's bits, and the scalar
/// reference is the Hadamard matrix product (entry (i, j) = (−1)^popcount(i &amp; j)).</summary>
public class HadamardKernelTests
{
    private static float[] Random(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(128)]
    [InlineData(256)]
    [InlineData(512)]
    [InlineData(2048)]
    public void VectorPathsGiveTheScalarReferencesBits(int n)
    {
        var rng = new Random(n);
        var x = Random(rng, n);
        var expected = x.ToArray();
        HadamardKernels.TransformScalar(expected);
        var got = x.ToArray();
        HadamardKernels.Transform(got);
        Assert.Equal(expected, got);
        if (Avx512F.IsSupported && n >= 16)
        {
            got = x.ToArray();
            HadamardKernels.Transform512(got);
            Assert.Equal(expected, got);
        }
        if (Avx2.IsSupported && n >= 8)
        {
            got = x.ToArray();
            HadamardKernels.Transform256(got);
            Assert.Equal(expected, got);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(16)]
    [InlineData(64)]
    public void TheScalarReferenceIsTheHadamardMatrixProduct(int n)
    {
        var x = Random(new Random(3 * n), n);
        var y = x.ToArray();
        HadamardKernels.TransformScalar(y);
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int j = 0; j < n; j++) sum += (System.Numerics.BitOperations.PopCount((uint)(i & j)) % 2 == 0 ? 1 : -1) * (double)x[j];
            Assert.Equal(sum, y[i], 1e-4);
        }
    }

    [Fact]
    public void ScaleAndTransformScalesFirst()
    {
        var rng = new Random(9);
        var x = Random(rng, 32);
        var scale = Random(rng, 32);
        var expected = new float[32];
        for (int i = 0; i < 32; i++) expected[i] = x[i] * scale[i];
        HadamardKernels.TransformScalar(expected);
        HadamardKernels.ScaleAndTransform(x, scale);
        Assert.Equal(expected, x);
    }

    [Fact]
    public void LengthsThatAreNotPowersOfTwoAreRejected()
    {
        Assert.Throws<ArgumentException>(() => HadamardKernels.Transform(new float[12]));
        Assert.Throws<ArgumentException>(() => HadamardKernels.Transform(new float[0]));
        Assert.Throws<ArgumentException>(() => HadamardKernels.TransformScalar(new float[384]));
        Assert.Throws<ArgumentException>(() => HadamardKernels.ScaleAndTransform(new float[16], new float[8]));
    }
}
