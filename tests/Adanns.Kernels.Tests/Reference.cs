namespace Adanns.Kernels.Tests;

/// <summary>Scalar double-precision references the SIMD kernels are checked against.</summary>
internal static class Reference
{
    public static double Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * y[i];
        return s;
    }

    public static double L2(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) { double d = (double)x[i] - y[i]; s += d * d; }
        return s;
    }

    /// <summary>Σ|xᵢyᵢ|: the scale that float rounding error of a dot product is proportional to.</summary>
    public static double AbsDot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += Math.Abs((double)x[i] * y[i]);
        return s;
    }

    public static void Fill(Span<float> s, Random rng)
    {
        for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() * 2 - 1);
    }

    /// <summary>Tolerance for a float reduction of n terms whose absolute sum is <paramref name="scale"/>.</summary>
    public static double Tol(double scale, int n) => 1e-6 + 4e-7 * Math.Sqrt(Math.Max(1, n)) * scale + 2e-7 * scale * Math.Log2(Math.Max(2, n));

    public static IEnumerable<int> Lengths()
    {
        for (int n = 1; n <= 256; n++) yield return n;
        foreach (var n in new[] { 384, 512, 768, 1024, 1536, 2048 }) yield return n;
    }
}
