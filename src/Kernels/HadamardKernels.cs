using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Adanns.Kernels;

/// <summary>
/// The fast Walsh–Hadamard transform (unnormalised, natural order) of a power-of-two block, in place: n·log2 n additions
/// instead of a dense product's n² multiply-adds. The building block of RaBitQ's structured random rotation (random sign
/// flips, then this, a few rounds).
/// </summary>
/// <remarks>
/// Butterflies of stride h ≥ the vector width are whole-vector adds and subtracts; the strides below it (1, 2, 4, 8 in a
/// 16-float register) are one permute, one multiply by ±1 (exact) and one add each: out_i = x_{i⊕h} + s_i·x_i with
/// s_i = +1 where bit h of i is clear and −1 where it is set. Paths, chosen once: AVX-512F (16 floats), AVX2 (8 floats),
/// scalar (also the reference for tests). Every path adds the same pairs in the same order, so all give the same bits.
/// </remarks>
public static class HadamardKernels
{
    /// <summary>Which path <see cref="Transform"/> takes here: "avx512", "avx2" or "scalar".</summary>
    public static string Path => Avx512F.IsSupported ? "avx512" : Avx2.IsSupported ? "avx2" : "scalar";

    /// <summary>Whether n is a power of two ≥ 1.</summary>
    public static bool IsPowerOfTwo(int n) => n > 0 && (n & (n - 1)) == 0;

    /// <summary>The unnormalised transform of <paramref name="x"/> in place (its length a power of two).</summary>
    public static void Transform(Span<float> x)
    {
        int n = x.Length;
        if (!IsPowerOfTwo(n)) throw new ArgumentException($"The Walsh–Hadamard transform needs a power-of-two length; got {n}.", nameof(x));
        if (Avx512F.IsSupported && n >= 16) Transform512(x);
        else if (Avx2.IsSupported && n >= 8) Transform256(x);
        else TransformScalar(x);
    }

    /// <summary>
    /// Multiplies <paramref name="x"/> by <paramref name="scale"/> element-wise (the rotation's signed, normalised
    /// diagonal), then transforms it in place.
    /// </summary>
    public static void ScaleAndTransform(Span<float> x, ReadOnlySpan<float> scale)
    {
        if (scale.Length != x.Length) throw new ArgumentException($"{scale.Length} scale factors for {x.Length} values.", nameof(scale));
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, scale, x);
        Transform(x);
    }

    /// <summary>The scalar reference: log2 n passes of butterflies (a, b) → (a + b, a − b) at strides 1, 2, 4, ….</summary>
    public static void TransformScalar(Span<float> x)
    {
        int n = x.Length;
        if (!IsPowerOfTwo(n)) throw new ArgumentException($"The Walsh–Hadamard transform needs a power-of-two length; got {n}.", nameof(x));
        for (int h = 1; h < n; h <<= 1)
            for (int i = 0; i < n; i += 2 * h)
                for (int j = i; j < i + h; j++)
                {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
    }

    internal static void Transform512(Span<float> x)
    {
        if (!Avx512F.IsSupported) throw new PlatformNotSupportedException();
        TransformWith<Butterflies512>(x);
    }

    internal static void Transform256(Span<float> x)
    {
        if (!Avx2.IsSupported) throw new PlatformNotSupportedException();
        TransformWith<Butterflies256>(x);
    }

    /// <summary>One register width's butterflies (an operator struct: the JIT inlines it per width).</summary>
    private interface IButterflies
    {
        /// <summary>Floats per register.</summary>
        static abstract int Width { get; }

        /// <summary>The strides below <see cref="Width"/> inside every register of the n floats at <paramref name="x"/>.</summary>
        static abstract void InRegisters(ref float x, int n);

        /// <summary>(a, b) → (a + b, a − b) for the registers at floats j and j + h of <paramref name="x0"/>.</summary>
        static abstract void Across(ref float x0, int j, int h);
    }

    /// <summary>The passes every vector path makes: each register's small strides, then strides Width, 2·Width, ….</summary>
    private static void TransformWith<T>(Span<float> x) where T : struct, IButterflies
    {
        int n = x.Length, w = T.Width;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        T.InRegisters(ref x0, n);
        for (int h = w; h < n; h <<= 1)
            for (int i = 0; i < n; i += 2 * h)
                for (int j = i; j < i + h; j += w)
                    T.Across(ref x0, j, h);
    }

    private readonly struct Butterflies512 : IButterflies
    {
        public static int Width => 16;

        /// <summary>Strides 1, 2, 4, 8 inside each register: permute i ⊕ h, then add ±x (constants outside the loop).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void InRegisters(ref float x0, int n)
        {
            var p1 = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
            var p2 = Vector512.Create(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
            var p4 = Vector512.Create(4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
            var p8 = Vector512.Create(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
            var s1 = Vector512.Create(1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f);
            var s2 = Vector512.Create(1f, 1f, -1f, -1f, 1f, 1f, -1f, -1f, 1f, 1f, -1f, -1f, 1f, 1f, -1f, -1f);
            var s4 = Vector512.Create(1f, 1f, 1f, 1f, -1f, -1f, -1f, -1f, 1f, 1f, 1f, 1f, -1f, -1f, -1f, -1f);
            var s8 = Vector512.Create(1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, -1f, -1f, -1f, -1f, -1f, -1f, -1f, -1f);
            for (int i = 0; i < n; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref x0, (nuint)i);
                v = Avx512F.PermuteVar16x32(v, p1) + s1 * v;
                v = Avx512F.PermuteVar16x32(v, p2) + s2 * v;
                v = Avx512F.PermuteVar16x32(v, p4) + s4 * v;
                v = Avx512F.PermuteVar16x32(v, p8) + s8 * v;
                v.StoreUnsafe(ref x0, (nuint)i);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Across(ref float x0, int j, int h)
        {
            var a = Vector512.LoadUnsafe(ref x0, (nuint)j);
            var b = Vector512.LoadUnsafe(ref x0, (nuint)(j + h));
            (a + b).StoreUnsafe(ref x0, (nuint)j);
            (a - b).StoreUnsafe(ref x0, (nuint)(j + h));
        }
    }

    private readonly struct Butterflies256 : IButterflies
    {
        public static int Width => 8;

        /// <summary>Strides 1, 2, 4 inside each register.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void InRegisters(ref float x0, int n)
        {
            var p1 = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
            var p2 = Vector256.Create(2, 3, 0, 1, 6, 7, 4, 5);
            var p4 = Vector256.Create(4, 5, 6, 7, 0, 1, 2, 3);
            var s1 = Vector256.Create(1f, -1f, 1f, -1f, 1f, -1f, 1f, -1f);
            var s2 = Vector256.Create(1f, 1f, -1f, -1f, 1f, 1f, -1f, -1f);
            var s4 = Vector256.Create(1f, 1f, 1f, 1f, -1f, -1f, -1f, -1f);
            for (int i = 0; i < n; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref x0, (nuint)i);
                v = Avx2.PermuteVar8x32(v, p1) + s1 * v;
                v = Avx2.PermuteVar8x32(v, p2) + s2 * v;
                v = Avx2.PermuteVar8x32(v, p4) + s4 * v;
                v.StoreUnsafe(ref x0, (nuint)i);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Across(ref float x0, int j, int h)
        {
            var a = Vector256.LoadUnsafe(ref x0, (nuint)j);
            var b = Vector256.LoadUnsafe(ref x0, (nuint)(j + h));
            (a + b).StoreUnsafe(ref x0, (nuint)j);
            (a - b).StoreUnsafe(ref x0, (nuint)(j + h));
        }
    }
}
