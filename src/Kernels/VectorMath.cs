using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Adanns.Kernels;

/// <summary>
/// Pairwise distance kernels over spans of any length. A Matryoshka prefix is just a shorter span.
/// </summary>
/// <remarks>
/// The SIMD width is chosen by <c>Vector512/256/128.IsHardwareAccelerated</c>, which the JIT folds to a
/// constant: the untaken paths are removed from the compiled method, so the choice costs nothing per call.
/// Each path is also reachable directly (internal) so tests can check all of them against a scalar reference.
/// Tails shorter than a vector are handled with one overlapping, masked load rather than a scalar loop.
/// </remarks>
public static class VectorMath
{
    /// <summary>Inner product x·y. Spans must have equal length.</summary>
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        CheckLengths(x, y);
        return Aggregate<DotOp>(x, y);
    }

    /// <summary>Squared Euclidean distance ‖x − y‖². Spans must have equal length.</summary>
    public static float L2Squared(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        CheckLengths(x, y);
        return Aggregate<L2Op>(x, y);
    }

    /// <summary>Squared norm ‖x‖².</summary>
    public static float NormSquared(ReadOnlySpan<float> x) => Aggregate<DotOp>(x, x);

    /// <summary>
    /// Cosine similarity x·y / (‖x‖‖y‖), computed in one fused pass. Returns 0 when either vector is zero
    /// (a zero vector has no direction; 0 ranks it as unrelated rather than producing NaN).
    /// </summary>
    public static float Cosine(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        CheckLengths(x, y);
        var (xy, xx, yy) = DotAndNorms(x, y);
        float denom = MathF.Sqrt(xx) * MathF.Sqrt(yy);
        return denom > 0 ? xy / denom : 0f;
    }

    /// <summary>Scales <paramref name="x"/> to unit L2 norm in place; a zero vector is left unchanged. Returns the old norm.</summary>
    public static float NormalizeInPlace(Span<float> x)
    {
        float norm = MathF.Sqrt(NormSquared(x));
        if (norm > 0)
        {
            float inv = 1f / norm;
            System.Numerics.Tensors.TensorPrimitives.Multiply(x, inv, x);
        }
        return norm;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Aggregate<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y) where TOp : struct, IPairOp
    {
        if (Vector512.IsHardwareAccelerated && x.Length >= Vector512<float>.Count)
            return Aggregate512<TOp>(x, y);
        if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
            return Aggregate256<TOp>(x, y);
        if (Vector128.IsHardwareAccelerated && x.Length >= Vector128<float>.Count)
            return Aggregate128<TOp>(x, y);
        return AggregateScalar<TOp>(x, y);
    }

    internal static float AggregateScalar<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y) where TOp : struct, IPairOp
    {
        float acc = 0;
        for (int i = 0; i < x.Length; i++)
            acc = TOp.Scalar(acc, x[i], y[i]);
        return acc;
    }

    /// <summary>Requires x.Length ≥ 16.</summary>
    internal static float Aggregate512<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y) where TOp : struct, IPairOp
    {
        const int W = 16;
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length;
        var a0 = Vector512<float>.Zero;
        var a1 = Vector512<float>.Zero;
        var a2 = Vector512<float>.Zero;
        var a3 = Vector512<float>.Zero;
        nuint i = 0;
        // Four independent accumulators hide the FMA latency.
        for (; i + 4 * W <= n; i += 4 * W)
        {
            a0 = TOp.Vec(a0, Vector512.LoadUnsafe(ref xr, i), Vector512.LoadUnsafe(ref yr, i));
            a1 = TOp.Vec(a1, Vector512.LoadUnsafe(ref xr, i + W), Vector512.LoadUnsafe(ref yr, i + W));
            a2 = TOp.Vec(a2, Vector512.LoadUnsafe(ref xr, i + 2 * W), Vector512.LoadUnsafe(ref yr, i + 2 * W));
            a3 = TOp.Vec(a3, Vector512.LoadUnsafe(ref xr, i + 3 * W), Vector512.LoadUnsafe(ref yr, i + 3 * W));
        }
        for (; i + W <= n; i += W)
            a0 = TOp.Vec(a0, Vector512.LoadUnsafe(ref xr, i), Vector512.LoadUnsafe(ref yr, i));
        if (i < n)
        {
            // Overlapping load of the last 16 elements; lanes already counted are masked to zero.
            var mask = TailMask512((int)(n - i));
            a1 = TOp.Vec(a1, Vector512.LoadUnsafe(ref xr, n - W) & mask, Vector512.LoadUnsafe(ref yr, n - W) & mask);
        }
        return Vector512.Sum((a0 + a1) + (a2 + a3));
    }

    /// <summary>Requires x.Length ≥ 8.</summary>
    internal static float Aggregate256<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y) where TOp : struct, IPairOp
    {
        const int W = 8;
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length;
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        var a2 = Vector256<float>.Zero;
        var a3 = Vector256<float>.Zero;
        nuint i = 0;
        for (; i + 4 * W <= n; i += 4 * W)
        {
            a0 = TOp.Vec(a0, Vector256.LoadUnsafe(ref xr, i), Vector256.LoadUnsafe(ref yr, i));
            a1 = TOp.Vec(a1, Vector256.LoadUnsafe(ref xr, i + W), Vector256.LoadUnsafe(ref yr, i + W));
            a2 = TOp.Vec(a2, Vector256.LoadUnsafe(ref xr, i + 2 * W), Vector256.LoadUnsafe(ref yr, i + 2 * W));
            a3 = TOp.Vec(a3, Vector256.LoadUnsafe(ref xr, i + 3 * W), Vector256.LoadUnsafe(ref yr, i + 3 * W));
        }
        for (; i + W <= n; i += W)
            a0 = TOp.Vec(a0, Vector256.LoadUnsafe(ref xr, i), Vector256.LoadUnsafe(ref yr, i));
        if (i < n)
        {
            var mask = TailMask256((int)(n - i));
            a1 = TOp.Vec(a1, Vector256.LoadUnsafe(ref xr, n - W) & mask, Vector256.LoadUnsafe(ref yr, n - W) & mask);
        }
        return Vector256.Sum((a0 + a1) + (a2 + a3));
    }

    /// <summary>Requires x.Length ≥ 4.</summary>
    internal static float Aggregate128<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y) where TOp : struct, IPairOp
    {
        const int W = 4;
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length;
        var a0 = Vector128<float>.Zero;
        var a1 = Vector128<float>.Zero;
        nuint i = 0;
        for (; i + 2 * W <= n; i += 2 * W)
        {
            a0 = TOp.Vec(a0, Vector128.LoadUnsafe(ref xr, i), Vector128.LoadUnsafe(ref yr, i));
            a1 = TOp.Vec(a1, Vector128.LoadUnsafe(ref xr, i + W), Vector128.LoadUnsafe(ref yr, i + W));
        }
        for (; i + W <= n; i += W)
            a0 = TOp.Vec(a0, Vector128.LoadUnsafe(ref xr, i), Vector128.LoadUnsafe(ref yr, i));
        if (i < n)
        {
            var mask = TailMask128((int)(n - i));
            a1 = TOp.Vec(a1, Vector128.LoadUnsafe(ref xr, n - W) & mask, Vector128.LoadUnsafe(ref yr, n - W) & mask);
        }
        return Vector128.Sum(a0 + a1);
    }

    /// <summary>x·y, ‖x‖², ‖y‖² in one pass (each loaded once). Spans must have equal length.</summary>
    public static (float Xy, float Xx, float Yy) DotAndNorms(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        nuint n = (nuint)x.Length;
        nuint i = 0;
        float xy = 0, xx = 0, yy = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var axy = Vector512<float>.Zero;
            var axx = Vector512<float>.Zero;
            var ayy = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var vx = Vector512.LoadUnsafe(ref xr, i);
                var vy = Vector512.LoadUnsafe(ref yr, i);
                axy = Vector512.FusedMultiplyAdd(vx, vy, axy);
                axx = Vector512.FusedMultiplyAdd(vx, vx, axx);
                ayy = Vector512.FusedMultiplyAdd(vy, vy, ayy);
            }
            if (i < n)
            {
                var mask = TailMask512((int)(n - i));
                var vx = Vector512.LoadUnsafe(ref xr, n - 16) & mask;
                var vy = Vector512.LoadUnsafe(ref yr, n - 16) & mask;
                axy = Vector512.FusedMultiplyAdd(vx, vy, axy);
                axx = Vector512.FusedMultiplyAdd(vx, vx, axx);
                ayy = Vector512.FusedMultiplyAdd(vy, vy, ayy);
            }
            return (Vector512.Sum(axy), Vector512.Sum(axx), Vector512.Sum(ayy));
        }
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var axy = Vector256<float>.Zero;
            var axx = Vector256<float>.Zero;
            var ayy = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var vx = Vector256.LoadUnsafe(ref xr, i);
                var vy = Vector256.LoadUnsafe(ref yr, i);
                axy = Vector256.FusedMultiplyAdd(vx, vy, axy);
                axx = Vector256.FusedMultiplyAdd(vx, vx, axx);
                ayy = Vector256.FusedMultiplyAdd(vy, vy, ayy);
            }
            if (i < n)
            {
                var mask = TailMask256((int)(n - i));
                var vx = Vector256.LoadUnsafe(ref xr, n - 8) & mask;
                var vy = Vector256.LoadUnsafe(ref yr, n - 8) & mask;
                axy = Vector256.FusedMultiplyAdd(vx, vy, axy);
                axx = Vector256.FusedMultiplyAdd(vx, vx, axx);
                ayy = Vector256.FusedMultiplyAdd(vy, vy, ayy);
            }
            return (Vector256.Sum(axy), Vector256.Sum(axx), Vector256.Sum(ayy));
        }
        for (; i < n; i++)
        {
            float a = Unsafe.Add(ref xr, i), b = Unsafe.Add(ref yr, i);
            xy += a * b;
            xx += a * a;
            yy += b * b;
        }
        return (xy, xx, yy);
    }

    /// <summary>Mask whose last <paramref name="remaining"/> lanes are all-ones (1 ≤ remaining &lt; 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> TailMask512(int remaining) =>
        Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(16 - remaining)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> TailMask256(int remaining) =>
        Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(8 - remaining)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> TailMask128(int remaining) =>
        Vector128.GreaterThanOrEqual(Vector128<int>.Indices, Vector128.Create(4 - remaining)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CheckLengths(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length)
            ThrowLengthMismatch(x.Length, y.Length);
    }

    private static void ThrowLengthMismatch(int a, int b) =>
        throw new ArgumentException($"Vectors have different lengths ({a} and {b}).");
}

/// <summary>One accumulate step of a pairwise reduction, at every SIMD width.</summary>
internal interface IPairOp
{
    static abstract float Scalar(float acc, float x, float y);
    static abstract Vector128<float> Vec(Vector128<float> acc, Vector128<float> x, Vector128<float> y);
    static abstract Vector256<float> Vec(Vector256<float> acc, Vector256<float> x, Vector256<float> y);
    static abstract Vector512<float> Vec(Vector512<float> acc, Vector512<float> x, Vector512<float> y);
}

internal readonly struct DotOp : IPairOp
{
    public static float Scalar(float acc, float x, float y) => MathF.FusedMultiplyAdd(x, y, acc);
    public static Vector128<float> Vec(Vector128<float> acc, Vector128<float> x, Vector128<float> y) => Vector128.FusedMultiplyAdd(x, y, acc);
    public static Vector256<float> Vec(Vector256<float> acc, Vector256<float> x, Vector256<float> y) => Vector256.FusedMultiplyAdd(x, y, acc);
    public static Vector512<float> Vec(Vector512<float> acc, Vector512<float> x, Vector512<float> y) => Vector512.FusedMultiplyAdd(x, y, acc);
}

internal readonly struct L2Op : IPairOp
{
    public static float Scalar(float acc, float x, float y) { float d = x - y; return MathF.FusedMultiplyAdd(d, d, acc); }
    public static Vector128<float> Vec(Vector128<float> acc, Vector128<float> x, Vector128<float> y) { var d = x - y; return Vector128.FusedMultiplyAdd(d, d, acc); }
    public static Vector256<float> Vec(Vector256<float> acc, Vector256<float> x, Vector256<float> y) { var d = x - y; return Vector256.FusedMultiplyAdd(d, d, acc); }
    public static Vector512<float> Vec(Vector512<float> acc, Vector512<float> x, Vector512<float> y) { var d = x - y; return Vector512.FusedMultiplyAdd(d, d, acc); }
}
