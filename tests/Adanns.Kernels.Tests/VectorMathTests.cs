using System.Runtime.Intrinsics;

namespace Adanns.Kernels.Tests;

public class VectorMathTests
{
    private delegate float Kernel(ReadOnlySpan<float> x, ReadOnlySpan<float> y);

    /// <summary>Every SIMD path this machine can run, plus the dispatching public entry points.</summary>
    private static IEnumerable<(string Name, int MinLength, Kernel Dot, Kernel L2)> Paths()
    {
        yield return ("public", 0, VectorMath.Dot, VectorMath.L2Squared);
        yield return ("scalar", 0, VectorMath.AggregateScalar<DotOp>, VectorMath.AggregateScalar<L2Op>);
        if (Vector128.IsHardwareAccelerated)
            yield return ("v128", 4, VectorMath.Aggregate128<DotOp>, VectorMath.Aggregate128<L2Op>);
        if (Vector256.IsHardwareAccelerated)
            yield return ("v256", 8, VectorMath.Aggregate256<DotOp>, VectorMath.Aggregate256<L2Op>);
        if (Vector512.IsHardwareAccelerated)
            yield return ("v512", 16, VectorMath.Aggregate512<DotOp>, VectorMath.Aggregate512<L2Op>);
    }

    [Fact]
    public void DotAndL2MatchScalarReferenceForEveryLengthPathAndOffset()
    {
        var rng = new Random(1);
        foreach (int n in Reference.Lengths())
        {
            foreach (int offset in new[] { 0, 1, 3 })
            {
                // Guarded: the span ends at an inaccessible page, so any over-read crashes.
                using var gx = new GuardedBuffer(n + offset);
                using var gy = new GuardedBuffer(n + offset);
                var x = gx.Span[offset..];
                var y = gy.Span[offset..];
                Reference.Fill(x, rng);
                Reference.Fill(y, rng);
                double dot = Reference.Dot(x, y), l2 = Reference.L2(x, y);
                double tolDot = Reference.Tol(Reference.AbsDot(x, y), n), tolL2 = Reference.Tol(l2, n);
                foreach (var (name, min, dotK, l2K) in Paths())
                {
                    if (n < min) continue;
                    Assert.True(Math.Abs(dotK(x, y) - dot) <= tolDot, $"{name} dot n={n} off={offset}: {dotK(x, y)} vs {dot}");
                    Assert.True(Math.Abs(l2K(x, y) - l2) <= tolL2, $"{name} l2 n={n} off={offset}: {l2K(x, y)} vs {l2}");
                }
            }
        }
    }

    [Fact]
    public void CosineAndNormsMatchReference()
    {
        var rng = new Random(2);
        foreach (int n in Reference.Lengths())
        {
            using var gx = new GuardedBuffer(n);
            using var gy = new GuardedBuffer(n);
            var x = gx.Span;
            var y = gy.Span;
            Reference.Fill(x, rng);
            Reference.Fill(y, rng);
            double xx = Reference.Dot(x, x), yy = Reference.Dot(y, y), xy = Reference.Dot(x, y);
            double cos = xy / Math.Sqrt(xx * yy);
            Assert.True(Math.Abs(VectorMath.Cosine(x, y) - cos) <= 1e-5 + 1e-5 * Reference.AbsDot(x, y) / Math.Sqrt(xx * yy), $"cos n={n}");
            Assert.True(Math.Abs(VectorMath.NormSquared(x) - xx) <= Reference.Tol(xx, n), $"norm n={n}");
            var (fxy, fxx, fyy) = VectorMath.DotAndNorms(x, y);
            Assert.True(Math.Abs(fxy - xy) <= Reference.Tol(Reference.AbsDot(x, y), n));
            Assert.True(Math.Abs(fxx - xx) <= Reference.Tol(xx, n));
            Assert.True(Math.Abs(fyy - yy) <= Reference.Tol(yy, n));
        }
    }

    [Fact]
    public void CosineOfZeroVectorIsZeroNotNaN()
    {
        var z = new float[20];
        var x = Enumerable.Range(1, 20).Select(i => (float)i).ToArray();
        Assert.Equal(0f, VectorMath.Cosine(z, x));
    }

    [Fact]
    public void NormalizeGivesUnitLengthAndLeavesZeroAlone()
    {
        var x = new float[] { 3, 4, 0, 0, 0 };
        Assert.Equal(5f, VectorMath.NormalizeInPlace(x), 5);
        Assert.Equal(0.6f, x[0], 6);
        Assert.Equal(0.8f, x[1], 6);
        var z = new float[7];
        Assert.Equal(0f, VectorMath.NormalizeInPlace(z));
        Assert.All(z, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void MismatchedLengthsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => VectorMath.Dot(new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => VectorMath.L2Squared(new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => VectorMath.Cosine(new float[3], new float[4]));
    }

    [Fact]
    public void EmptySpansGiveZero()
    {
        Assert.Equal(0f, VectorMath.Dot([], []));
        Assert.Equal(0f, VectorMath.L2Squared([], []));
    }
}
