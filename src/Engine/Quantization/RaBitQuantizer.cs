using System.Numerics.Tensors;
using Adanns.Engine.Transforms;
using Adanns.Kernels;

namespace Adanns.Engine.Quantization;

/// <summary>
/// RaBitQ (Gao &amp; Long, SIGMOD 2024) and Extended RaBitQ (SIGMOD 2025) codes of d-dim vectors relative to a set of
/// centres (the IVF lists): the residual r = x − c is rotated by a seeded random orthogonal matrix P and coded with b bits
/// per dim (b = 1: the signs); each code carries the factors that make the inner-product estimate unbiased and bound
/// its error.
/// </summary>
/// <remarks>
/// <para>Code: values u_j ∈ [0, 2^b) with v = u − (2^b − 1)/2 ∝ the quantized unit residual x̄ = v/‖v‖ in rotated
/// space. b = 1 takes the signs of P·r; b &gt; 1 searches the scale t maximising cos(v, P·r) over a grid, rounding
/// t·(P·r)_j to the nearest level (Extended RaBitQ's code search, on a grid rather than its exact enumeration).</para>
/// <para>Estimator: ⟨r, q − c⟩ ≈ ‖r‖·⟨x̄, P(q − c)⟩ / ⟨x̄, P r/‖r‖⟩ — unbiased over the random rotation — with the
/// error at most ε0·‖r‖·‖q − c‖·√((1 − a²)/(d − 1))/a (a = ⟨x̄, P r/‖r‖⟩) with high probability (ε0 = 1.9 in the
/// papers). The query's residual is quantized to <see cref="QueryBits"/> bits (4 for 1-bit codes, 8 otherwise); its
/// rounding error is folded into the bound as an independent term of the same form.</para>
/// <para>Keys follow the rerank rule (<c>RerankKey</c>): −⟨q, x⟩ for inner product and cosine (x the unit prefix for
/// cosine, q the raw query prefix), ‖x‖² − 2⟨q, x⟩ for L2, with ⟨q, x⟩ = ⟨q, c⟩ + ⟨c, r⟩ + ⟨q − c, r⟩: only the last term
/// is estimated, the rest is exact. Per code: four floats (<see cref="Factors"/>): A (the exact key terms of the row),
/// S (the estimate's scale), E (the bound's scale) and Σu.</para>
/// </remarks>
public sealed class RaBitQuantizer
{
    /// <summary>Floats stored with every code.</summary>
    public const int Factors = 4;

    /// <summary>The papers' confidence parameter of the error bound.</summary>
    public const float DefaultEpsilon0 = 1.9f;

    private readonly float[] _centers;        // lists × d, code space
    private readonly float[] _rotatedCenters; // lists × d, P·c

    private RaBitQuantizer(int dimension, int bits, float epsilon0, RotationTransform rotation, float[] centers, int lists)
    {
        Dimension = dimension;
        Bits = bits;
        QueryBits = bits == 1 ? 4 : 8;
        _epsilon0 = epsilon0;
        Rotation = rotation;
        Lists = lists;
        _centers = centers;
        _rotatedCenters = new float[centers.Length];
        for (int l = 0; l < lists; l++)
            rotation.Apply(centers.AsSpan(l * dimension, dimension), _rotatedCenters.AsSpan(l * dimension, dimension));
        Words = RaBitQKernels.Words(dimension);
        // Rounding a rotated query (components ~ N(0, ‖q−c‖²/d), range ≈ 2√(2 ln d)·‖q−c‖/√d) to 2^Bq levels adds an
        // error of standard deviation ≈ Δ/√12 per unit of ‖x̄‖: this is its ratio to ‖q − c‖.
        double range = 2 * Math.Sqrt(2 * Math.Log(Math.Max(dimension, 2))) / Math.Sqrt(dimension);
        _queryNoise = range / ((1 << QueryBits) - 1) / Math.Sqrt(12);
    }

    private readonly double _queryNoise;

    /// <summary>Coded dims d.</summary>
    public int Dimension { get; }

    /// <summary>Bits per dim b (1–8).</summary>
    public int Bits { get; }

    /// <summary>Bits per dim of the quantized query residual.</summary>
    public int QueryBits { get; }

    /// <summary>
    /// ε0 of the bound (see remarks): larger values make the bound hold for more pairs (a Gaussian tail: 1.9 ≈ 94%,
    /// 3 ≈ 99.7%, 4 ≈ 99.99%) and rerank more candidates. May be changed between searches (it is saved with the index).
    /// </summary>
    public float Epsilon0
    {
        get => _epsilon0;
        set
        {
            Check(Dimension, Bits, value);
            _epsilon0 = value;
        }
    }

    private float _epsilon0;

    /// <summary>The seeded random orthogonal d×d transform P.</summary>
    public RotationTransform Rotation { get; }

    /// <summary>Number of centres (lists).</summary>
    public int Lists { get; }

    /// <summary>64-bit words per bit plane.</summary>
    public int Words { get; }

    /// <summary>The centres, lists × d row-major.</summary>
    public ReadOnlySpan<float> Centers => _centers;

    /// <summary>Bytes of an unpacked code: d values, then the <see cref="Factors"/> floats.</summary>
    public int CodeWidth => Dimension + Factors * sizeof(float);

    /// <summary>Bytes a code takes in a list: b·⌈d/64⌉·8 plane bytes plus the factors.</summary>
    public int StoredBytes => Bits * Words * 8 + Factors * sizeof(float);

    /// <summary>A quantizer over <paramref name="centers"/> (lists × d) with a random orthogonal P drawn from <paramref name="seed"/>.</summary>
    public static RaBitQuantizer Create(int dimension, int bits, float[] centers, int seed, float epsilon0 = DefaultEpsilon0)
    {
        Check(dimension, bits, epsilon0);
        return new RaBitQuantizer(dimension, bits, epsilon0, RandomOrthogonal(dimension, seed), centers, centers.Length / dimension);
    }

    /// <summary>A quantizer from stored parts (index files).</summary>
    public static RaBitQuantizer FromParts(int dimension, int bits, float epsilon0, RotationTransform rotation, float[] centers)
    {
        Check(dimension, bits, epsilon0);
        if (rotation.Dimension != dimension) throw new ArgumentException($"The transform is {rotation.Dimension}-dim; the codes {dimension}-dim.", nameof(rotation));
        if (centers.Length == 0 || centers.Length % dimension != 0) throw new ArgumentException($"Centres must be lists × {dimension} floats.", nameof(centers));
        return new RaBitQuantizer(dimension, bits, epsilon0, rotation, centers, centers.Length / dimension);
    }

    private static void Check(int dimension, int bits, float epsilon0)
    {
        if (dimension < 2) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "RaBitQ codes need at least 2 dims.");
        if (bits is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "RaBitQ bits per dim must be in [1, 8].");
        if (!(epsilon0 > 0) || !float.IsFinite(epsilon0)) throw new ArgumentOutOfRangeException(nameof(epsilon0), epsilon0, "ε0 must be a positive finite number.");
    }

    /// <summary>A seeded random orthogonal matrix (Gram–Schmidt on Gaussian rows, in double).</summary>
    public static RotationTransform RandomOrthogonal(int d, int seed)
    {
        var rng = new Random(seed);
        var m = new double[d * d];
        for (int i = 0; i < m.Length; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            m[i] = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        for (int i = 0; i < d; i++)
        {
            var row = m.AsSpan(i * d, d);
            for (int pass = 0; pass < 2; pass++) // twice: orthogonal to float precision
                for (int k = 0; k < i; k++)
                {
                    var prev = m.AsSpan(k * d, d);
                    double dot = 0;
                    for (int j = 0; j < d; j++) dot += row[j] * prev[j];
                    for (int j = 0; j < d; j++) row[j] -= dot * prev[j];
                }
            double n = 0;
            foreach (double v in row) n += v * v;
            n = Math.Sqrt(n);
            for (int j = 0; j < d; j++) row[j] /= n;
        }
        var f = new float[d * d];
        for (int i = 0; i < f.Length; i++) f[i] = (float)m[i];
        var ones = new double[d];
        Array.Fill(ones, 1.0);
        return RotationTransform.FromMatrix(d, f, ones);
    }

    /// <summary>Scratch for <see cref="Encode"/> (one per thread).</summary>
    public sealed class EncodeScratch(int d)
    {
        internal readonly float[] Residual = new float[d], Rotated = new float[d], Center = new float[d];
        internal readonly byte[] Trial = new byte[d];
    }

    /// <summary>
    /// The code of x (code space, d dims) relative to centre <paramref name="list"/>: d values then the factors, in
    /// <paramref name="code"/> (<see cref="CodeWidth"/> bytes). <paramref name="l2"/>: keys are L2 keys, else inner product.
    /// </summary>
    public void Encode(ReadOnlySpan<float> x, int list, bool l2, Span<byte> code, EncodeScratch s)
    {
        int d = Dimension;
        var c = _centers.AsSpan(list * d, d);
        var r = s.Residual;
        TensorPrimitives.Subtract(x[..d], c, r);
        float rr = MathF.Sqrt(TensorPrimitives.Dot(r, r));
        float cr = TensorPrimitives.Dot(c, r);
        var u = code[..d];
        var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code.Slice(d, Factors * sizeof(float)));
        float mult = l2 ? 2f : 1f;
        float xx = l2 ? TensorPrimitives.Dot(x[..d], x[..d]) : 0f;
        f[0] = l2 ? xx - 2 * cr : -cr;
        if (!(rr > 0))
        {
            u.Clear();
            f[1] = f[2] = f[3] = 0;
            return;
        }
        Rotation.Apply(r, s.Rotated);
        var o = s.Rotated; // P·r (unnormalised: the code search is scale-free)
        double vo = Quantize(o, u, s.Trial, out double vv); // ⟨v, P r⟩ and ‖v‖²
        double a = vo / (rr * Math.Sqrt(vv));
        if (!(vo > 0) || !(a > 0))
        {
            u.Clear();
            f[1] = f[2] = f[3] = 0;
            return;
        }
        a = Math.Min(a, 1);
        int sum = 0;
        foreach (byte b in u) sum += b;
        f[1] = (float)(-mult * rr * rr / vo);        // S: ⟨r, q'⟩ ≈ (‖r‖²/⟨v, P r⟩)·⟨v, q'⟩
        f[2] = (float)(mult * rr / a * Math.Sqrt((1 - a * a) / (d - 1) + _queryNoise * _queryNoise));
        f[3] = sum;
    }

    /// <summary>Codes of o (any scale) into u; returns ⟨v, o⟩ and ‖v‖² of the chosen code.</summary>
    private double Quantize(ReadOnlySpan<float> o, Span<byte> u, Span<byte> trial, out double vv)
    {
        int d = Dimension;
        if (Bits == 1)
        {
            double dot = 0;
            for (int j = 0; j < d; j++)
            {
                u[j] = o[j] > 0 ? (byte)1 : (byte)0;
                dot += Math.Abs(o[j]) * 0.5;
            }
            vv = d * 0.25;
            return dot;
        }
        int top = (1 << Bits) - 1;
        double half = top / 2.0;
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(o)); // MaxMagnitude keeps the sign
        double bestCos = double.NegativeInfinity, bestDot = 0, bestVv = 1;
        // Scales t with t·max|o| from a quarter of the level range to twice it (larger t clips the extremes).
        const int Steps = 40;
        for (int step = 0; step < Steps; step++)
        {
            double t = (half + 0.5) / max * (0.25 + 1.75 * step / (Steps - 1));
            double dot = 0, norm = 0;
            for (int j = 0; j < d; j++)
            {
                int level = (int)Math.Clamp(Math.Round(t * o[j] + half), 0, top);
                trial[j] = (byte)level;
                double v = level - half;
                dot += v * o[j];
                norm += v * v;
            }
            double cos = dot / Math.Sqrt(norm);
            if (cos > bestCos)
            {
                bestCos = cos;
                bestDot = dot;
                bestVv = norm;
                trial[..d].CopyTo(u);
            }
        }
        vv = bestVv;
        return bestDot;
    }

    /// <summary>Per-list query state: the quantized residual's planes and the terms of every key in that list.</summary>
    public sealed class QueryScratch(RaBitQuantizer q)
    {
        internal readonly float[] Rotated = new float[q.Dimension], Residual = new float[q.Dimension];
        internal readonly byte[] Levels = new byte[q.Words * 64];
        internal readonly float[] Scaled = new float[q.Dimension];

        /// <summary>The dims this scratch was made for.</summary>
        public int Shape => Rotated.Length;

        /// <summary>The query planes (<see cref="QueryBits"/> × <see cref="Words"/>), for <see cref="RaBitQKernels.Scan"/>.</summary>
        public readonly ulong[] Planes = new ulong[q.QueryBits * q.Words];

        /// <summary>Key = ListConstant + A + S·(Delta·sum + Lo·Σu − Shift); bound = BoundScale·E.</summary>
        public float ListConstant, Delta, Lo, Shift, BoundScale;
    }

    /// <summary>Rotates the code-space query once (P·q); every list's residual then costs d operations.</summary>
    public void RotateQuery(ReadOnlySpan<float> q, QueryScratch s) => Rotation.Apply(q[..Dimension], s.Rotated);

    /// <summary>Prepares list <paramref name="list"/>'s planes and key terms for the query rotated by <see cref="RotateQuery"/>.</summary>
    public void PrepareList(ReadOnlySpan<float> q, int list, bool l2, QueryScratch s)
    {
        int d = Dimension;
        var res = s.Residual;
        TensorPrimitives.Subtract(s.Rotated, _rotatedCenters.AsSpan(list * d, d), res);
        float norm = MathF.Sqrt(TensorPrimitives.Dot(res, res));
        float sum = TensorPrimitives.Sum(res);
        s.Delta = RaBitQKernels.QuantizeToPlanes(res, QueryBits, Words, s.Scaled, s.Levels, s.Planes, out s.Lo);
        s.Shift = ((1 << Bits) - 1) / 2f * sum;
        s.ListConstant = -(l2 ? 2f : 1f) * TensorPrimitives.Dot(q[..d], _centers.AsSpan(list * d, d));
        s.BoundScale = Epsilon0 * norm;
    }

    /// <summary>The estimated key of one code from its integer sum (reference path; the scan inlines it).</summary>
    public static float Key(QueryScratch s, int sum, ReadOnlySpan<float> factors) =>
        s.ListConstant + factors[0] + factors[1] * (s.Delta * sum + s.Lo * factors[3] - s.Shift);

    /// <summary>
    /// Scalar reference of the whole estimate for tests: the key of an unpacked code (as <see cref="Encode"/> writes it)
    /// and its bound, computed from the values directly.
    /// </summary>
    public float ReferenceKey(ReadOnlySpan<byte> code, QueryScratch s, out float bound)
    {
        int d = Dimension;
        int sum = 0;
        for (int j = 0; j < d; j++) sum += code[j] * s.Levels[j];
        var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code.Slice(d, Factors * sizeof(float)));
        bound = s.BoundScale * f[2];
        return Key(s, sum, f);
    }
}
