using Adanns.Kernels;

namespace Adanns.Engine.Transforms;

/// <summary>
/// A seeded structured random orthogonal transform of d dims (randomized Hadamard): a few rounds of random sign flips
/// followed by a normalised fast Walsh–Hadamard transform, d·log d operations per vector instead of a dense matrix's d².
/// Used as RaBitQ's random rotation P (<see cref="Quantization.RaBitQuantizer"/>).
/// </summary>
/// <remarks>
/// <para>Let n be the largest power of two ≤ d. When d = n, a round is y ← H·D·y, H the n×n Walsh–Hadamard matrix
/// divided by √n (orthogonal) and D a random ±1 diagonal. When d &gt; n (e.g. 384 = 256 + 128), a round applies that
/// step to the first n coordinates, then another one (its own signs) to the last n coordinates: two overlapping blocks
/// covering all d, each an orthogonal map of its n coordinates that leaves the rest alone, so the composition is exactly
/// orthogonal (no padding: the output has d dims, norms and inner products are preserved). After two rounds every
/// output coordinate depends on every input coordinate; <see cref="DefaultRounds"/> rounds are used.</para>
/// <para>The signs are drawn from a seeded SplitMix64 stream (independent of .NET's <see cref="Random"/>), and are what
/// an index file stores (<see cref="Negative"/>), so a loaded transform is the saved one bit for bit.</para>
/// </remarks>
public sealed class HadamardRotation
{
    /// <summary>Rounds of sign flips and transforms a new rotation uses.</summary>
    public const int DefaultRounds = 3;

    /// <summary>The most rounds accepted (files are checked against it).</summary>
    public const int MaxRounds = 16;

    private readonly byte[] _negative;   // rounds × blocks × n: 1 where the sign is −1
    private readonly float[] _scale;     // the same, as ±1/√n

    private HadamardRotation(int dimension, int rounds, byte[] negative)
    {
        Dimension = dimension;
        Rounds = rounds;
        BlockSize = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)dimension));
        Blocks = BlockSize == dimension ? 1 : 2;
        _negative = negative;
        float inv = 1f / MathF.Sqrt(BlockSize);
        _scale = new float[negative.Length];
        for (int i = 0; i < negative.Length; i++) _scale[i] = negative[i] != 0 ? -inv : inv;
    }

    /// <summary>Input and output dims d.</summary>
    public int Dimension { get; }

    /// <summary>Rounds of sign flips and transforms.</summary>
    public int Rounds { get; }

    /// <summary>The transformed block size n: the largest power of two ≤ d.</summary>
    public int BlockSize { get; }

    /// <summary>Blocks per round: 1 when d is a power of two, else 2 (the first n and the last n coordinates).</summary>
    public int Blocks { get; }

    /// <summary>The signs, rounds × blocks × n bytes in application order: 1 where a coordinate is negated, else 0.</summary>
    public ReadOnlySpan<byte> Negative => _negative;

    /// <summary>Sign bytes a d-dim rotation of <paramref name="rounds"/> rounds holds (see <see cref="Negative"/>).</summary>
    public static int SignCount(int dimension, int rounds)
    {
        CheckDimension(dimension);
        CheckRounds(rounds);
        int n = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)dimension));
        return rounds * (n == dimension ? 1 : 2) * n;
    }

    /// <summary>Operations (adds, and the sign-and-scale multiplies) one <see cref="Apply"/> costs.</summary>
    public long OperationsPerVector => (long)Rounds * Blocks * BlockSize * (System.Numerics.BitOperations.Log2((uint)BlockSize) + 1);

    /// <summary>A rotation of d dims with signs drawn from <paramref name="seed"/>.</summary>
    public static HadamardRotation Create(int dimension, int seed, int rounds = DefaultRounds)
    {
        var negative = new byte[SignCount(dimension, rounds)];
        ulong state = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL);
        for (int i = 0; i < negative.Length; i += 64)
        {
            ulong word = SplitMix64(ref state);
            for (int b = 0; b < 64 && i + b < negative.Length; b++) negative[i + b] = (byte)((word >> b) & 1);
        }
        return new HadamardRotation(dimension, rounds, negative);
    }

    /// <summary>A rotation from stored signs (<see cref="Negative"/>); each byte must be 0 or 1.</summary>
    public static HadamardRotation FromSigns(int dimension, int rounds, ReadOnlySpan<byte> negative)
    {
        int count = SignCount(dimension, rounds);
        if (negative.Length != count)
            throw new ArgumentException($"A {dimension}-dim Hadamard rotation of {rounds} rounds has {count} signs; got {negative.Length}.", nameof(negative));
        for (int i = 0; i < negative.Length; i++)
            if (negative[i] > 1)
                throw new ArgumentException($"Hadamard rotation sign {i} is {negative[i]}; signs must be 0 (+) or 1 (−).", nameof(negative));
        return new HadamardRotation(dimension, rounds, negative.ToArray());
    }

    private static void CheckDimension(int dimension)
    {
        if (dimension < 2) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "A Hadamard rotation needs at least 2 dims.");
    }

    private static void CheckRounds(int rounds)
    {
        if (rounds is < 1 or > MaxRounds) throw new ArgumentOutOfRangeException(nameof(rounds), rounds, $"Hadamard rotation rounds must be in [1, {MaxRounds}].");
    }

    private static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>y = P·x for one d-dim vector (x and y may be the same span).</summary>
    public void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        int d = Dimension;
        if (x.Length != d || y.Length != d)
            throw new ArgumentException($"Hadamard rotation is {d}-dim; got input {x.Length} and output {y.Length}.");
        if (!x.Overlaps(y, out int offset) || offset != 0) x.CopyTo(y);
        ApplyInPlace(y);
    }

    /// <summary>y ← P·y in place.</summary>
    public void ApplyInPlace(Span<float> y)
    {
        int d = Dimension, n = BlockSize;
        if (y.Length != d) throw new ArgumentException($"Hadamard rotation is {d}-dim; got {y.Length} values.", nameof(y));
        var scale = _scale.AsSpan();
        for (int round = 0; round < Rounds; round++)
        {
            HadamardKernels.ScaleAndTransform(y[..n], scale.Slice(round * Blocks * n, n));
            if (Blocks == 2) HadamardKernels.ScaleAndTransform(y[(d - n)..], scale.Slice((round * 2 + 1) * n, n));
        }
    }

    /// <summary>P·x for <paramref name="m"/> vectors <paramref name="stride"/> floats apart (their first d values), into <paramref name="output"/> (m × d).</summary>
    public void ApplyBatch(ReadOnlySpan<float> rows, int stride, int m, Span<float> output)
    {
        int d = Dimension;
        for (int i = 0; i < m; i++) Apply(rows.Slice(i * stride, d), output.Slice(i * d, d));
    }

    /// <summary>The d×d matrix of P, row-major (for tests and inspection: P applied to each unit vector is a column).</summary>
    public float[] ToMatrix()
    {
        int d = Dimension;
        var m = new float[d * d];
        var e = new float[d];
        for (int j = 0; j < d; j++)
        {
            Array.Clear(e);
            e[j] = 1;
            ApplyInPlace(e);
            for (int i = 0; i < d; i++) m[i * d + j] = e[i];
        }
        return m;
    }
}
