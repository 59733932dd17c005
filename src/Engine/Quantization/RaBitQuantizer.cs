using System.Numerics.Tensors;
using Adanns.Engine.Transforms;
using Adanns.Kernels;

namespace Adanns.Engine.Quantization;

/// <summary>Which random orthogonal transform P a RaBitQ quantizer rotates residuals and queries by.</summary>
public enum RaBitQRotation
{
    /// <summary>A structured randomized Hadamard transform (<see cref="HadamardRotation"/>): d·log d per vector. The default.</summary>
    Hadamard,

    /// <summary>A dense d×d random orthogonal matrix (Gram–Schmidt on Gaussian rows): d² per vector, as index files before format 1.11.</summary>
    Dense,
}

/// <summary>
/// RaBitQ (Gao &amp; Long, SIGMOD 2024) and Extended RaBitQ (SIGMOD 2025) codes of d-dim vectors relative to a set of
/// centres (the IVF lists): the residual r = x − c is rotated by a seeded random orthogonal transform P (a structured
/// randomized Hadamard transform, or a dense matrix: <see cref="RaBitQRotation"/>) and coded with b bits
/// per dim (b = 1: the signs); each code carries the factors that make the inner-product estimate unbiased and bound
/// its error.
/// </summary>
/// <remarks>
/// <para>Code: values u_j ∈ [0, 2^b) with v = u − (2^b − 1)/2 ∝ the quantized unit residual x̄ = v/‖v‖ in rotated
/// space. b = 1 takes the signs of P·r; b &gt; 1 searches the scale t maximising cos(v, P·r) over a grid, rounding
/// t·(P·r)_j to the nearest level (Extended RaBitQ's code search, on a grid rather than its exact enumeration).</para>
/// <para>Estimator: ⟨r, q − c⟩ ≈ ‖r‖·⟨x̄, P(q − c)⟩ / ⟨x̄, P r/‖r‖⟩ — unbiased over the random rotation — with the
/// error at most ε0·‖r‖·‖q − c‖·√((1 − a²)/(d − 1))/a (a = ⟨x̄, P r/‖r‖⟩) with high probability (ε0 = 1.9 in the
/// papers).</para>
/// <para>Keys follow the rerank rule (<c>RerankKey</c>): −⟨q, x⟩ for inner product and cosine (x the unit prefix for
/// cosine, q the raw query prefix), ‖x‖² − 2⟨q, x⟩ for L2, with ⟨q, x⟩ = ⟨q, c⟩ + ⟨c, r⟩ + ⟨q − c, r⟩: only the last term
/// is estimated, the rest is exact. Per code: three floats (<see cref="Factors"/>): A′ (the exact key terms of the row
/// minus S·⟨v, P c⟩, so that the estimate needs P q only, not P(q − c): one table per query for all lists, as faiss's
/// IVF RaBitQ fast scan), S (the estimate's scale) and E (the bound's scale).</para>
/// <para>Query: P q's 16-entry tables per 4 dims quantized to 8 bits (<see cref="RaBitQKernels"/>); their rounding
/// adds a term Noise·|S| to the bound.</para>
/// </remarks>
public sealed class RaBitQuantizer
{
    /// <summary>Floats stored with every code: A′, S, E.</summary>
    public const int Factors = 3;

    /// <summary>The papers' confidence parameter of the error bound.</summary>
    public const float DefaultEpsilon0 = 1.9f;

    private readonly float[] _centers;        // lists × d, code space
    private readonly float[] _rotatedCenters; // lists × d, P·c

    private RaBitQuantizer(int dimension, int bits, float epsilon0, RotationTransform? rotation, HadamardRotation? hadamard, float[] centers, int lists)
    {
        Dimension = dimension;
        Bits = bits;
        _epsilon0 = epsilon0;
        Rotation = rotation;
        Hadamard = hadamard;
        Lists = lists;
        _centers = centers;
        _rotatedCenters = new float[centers.Length];
        for (int l = 0; l < lists; l++)
            Rotate(centers.AsSpan(l * dimension, dimension), _rotatedCenters.AsSpan(l * dimension, dimension));
        _centerNorms2 = new float[lists];
        for (int l = 0; l < lists; l++)
        {
            var c = centers.AsSpan(l * dimension, dimension);
            _centerNorms2[l] = TensorPrimitives.Dot(c, c);
        }
    }

    private readonly float[] _centerNorms2; // ‖c‖² per list

    /// <summary>Coded dims d.</summary>
    public int Dimension { get; }

    /// <summary>Bits per dim b (1–8).</summary>
    public int Bits { get; }

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

    /// <summary>The dense d×d transform P (<see cref="RaBitQRotation.Dense"/>), else null.</summary>
    public RotationTransform? Rotation { get; }

    /// <summary>The structured transform P (<see cref="RaBitQRotation.Hadamard"/>), else null.</summary>
    public HadamardRotation? Hadamard { get; }

    /// <summary>Which kind of transform P is.</summary>
    public RaBitQRotation RotationKind => Hadamard is not null ? RaBitQRotation.Hadamard : RaBitQRotation.Dense;

    /// <summary>Operations of one P·x (counted in search FLOPs): d² multiply-adds dense, Σ n·(log2 n + 1) structured.</summary>
    public long RotationOperations => Hadamard?.OperationsPerVector ?? (long)Dimension * Dimension;

    /// <summary>y = P·x (d dims each, not overlapping).</summary>
    private void Rotate(ReadOnlySpan<float> x, Span<float> y)
    {
        if (Hadamard is { } h) h.Apply(x, y);
        else Rotation!.Apply(x, y);
    }

    /// <summary>Number of centres (lists).</summary>
    public int Lists { get; }

    /// <summary>4-dim sub-codes per plane (d padded to a multiple of 16; see <see cref="RaBitQKernels"/>).</summary>
    public int SubCodes => RaBitQKernels.SubCodes(Dimension);

    /// <summary>The centres, lists × d row-major.</summary>
    public ReadOnlySpan<float> Centers => _centers;

    /// <summary>Bytes of an unpacked code: d values, then the <see cref="Factors"/> floats.</summary>
    public int CodeWidth => Dimension + Factors * sizeof(float);

    /// <summary>Bytes a code takes in a list: b·⌈d/16⌉·2 plane bytes plus the factors.</summary>
    public int StoredBytes => Bits * RaBitQKernels.PlaneBytes(Dimension) / RaBitQKernels.BlockRows + Factors * sizeof(float);

    /// <summary>
    /// A quantizer over <paramref name="centers"/> (lists × d) with a random orthogonal P of kind <paramref name="rotation"/>
    /// drawn from <paramref name="seed"/>.
    /// </summary>
    public static RaBitQuantizer Create(int dimension, int bits, float[] centers, int seed, float epsilon0 = DefaultEpsilon0,
        RaBitQRotation rotation = RaBitQRotation.Hadamard)
    {
        Check(dimension, bits, epsilon0);
        CheckCenters(dimension, centers);
        return rotation switch
        {
            RaBitQRotation.Hadamard => new RaBitQuantizer(dimension, bits, epsilon0, null, HadamardRotation.Create(dimension, seed), centers, centers.Length / dimension),
            RaBitQRotation.Dense => new RaBitQuantizer(dimension, bits, epsilon0, RandomOrthogonal(dimension, seed), null, centers, centers.Length / dimension),
            _ => throw new ArgumentOutOfRangeException(nameof(rotation), rotation, "RaBitQ rotation must be Hadamard or Dense."),
        };
    }

    /// <summary>A quantizer from stored parts with a dense P (index files).</summary>
    public static RaBitQuantizer FromParts(int dimension, int bits, float epsilon0, RotationTransform rotation, float[] centers)
    {
        Check(dimension, bits, epsilon0);
        if (rotation.Dimension != dimension) throw new ArgumentException($"The transform is {rotation.Dimension}-dim; the codes {dimension}-dim.", nameof(rotation));
        CheckCenters(dimension, centers);
        return new RaBitQuantizer(dimension, bits, epsilon0, rotation, null, centers, centers.Length / dimension);
    }

    /// <summary>A quantizer from stored parts with a structured P (index files).</summary>
    public static RaBitQuantizer FromParts(int dimension, int bits, float epsilon0, HadamardRotation rotation, float[] centers)
    {
        Check(dimension, bits, epsilon0);
        if (rotation.Dimension != dimension) throw new ArgumentException($"The transform is {rotation.Dimension}-dim; the codes {dimension}-dim.", nameof(rotation));
        CheckCenters(dimension, centers);
        return new RaBitQuantizer(dimension, bits, epsilon0, null, rotation, centers, centers.Length / dimension);
    }

    private static void CheckCenters(int dimension, float[] centers)
    {
        if (centers.Length == 0 || centers.Length % dimension != 0) throw new ArgumentException($"Centres must be lists × {dimension} floats.", nameof(centers));
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
            f[1] = f[2] = 0;
            return;
        }
        Rotate(r, s.Rotated);
        var o = s.Rotated; // P·r (unnormalised: the code search is scale-free)
        double vo = Quantize(o, u, s.Trial, out double vv); // ⟨v, P r⟩ and ‖v‖²
        double a = vo / (rr * Math.Sqrt(vv));
        if (!(vo > 0) || !(a > 0))
        {
            u.Clear();
            f[1] = f[2] = 0;
            return;
        }
        a = Math.Min(a, 1);
        f[1] = (float)(-mult * rr * rr / vo);        // S: ⟨r, q'⟩ ≈ (‖r‖²/⟨v, P r⟩)·⟨v, q'⟩
        f[2] = (float)(mult * rr / a * Math.Sqrt((1 - a * a) / (d - 1)));
        f[0] = (float)(f[0] - f[1] * CentreTerm(u, list)); // A′: the estimate then needs P q, not P(q − c)
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

    /// <summary>
    /// Query state: the 8-bit tables of the rotated query prefix P·q (built once per query, shared by every list) and
    /// the terms of the keys in the list being scanned (<see cref="PrepareList"/>).
    /// </summary>
    public sealed class QueryScratch(RaBitQuantizer q)
    {
        internal readonly float[] Rotated = new float[q.Dimension];
        internal readonly float[] Lut = new float[RaBitQKernels.SubCodes(q.Dimension) * RaBitQKernels.Entries];

        /// <summary>The dims this scratch was made for.</summary>
        public int Shape => Rotated.Length;

        /// <summary>The 8-bit scan table (<see cref="RaBitQKernels.TableBytes"/>), for <see cref="RaBitQKernels.Scan"/>.</summary>
        public readonly byte[] Table = new byte[RaBitQKernels.TableBytes(q.Dimension)];

        /// <summary>Key = ListConstant + A′ + S·(Scale·sum + Offset); bound = BoundScale·E + Noise·|S|.</summary>
        public float ListConstant, Scale, Offset, BoundScale, Noise;

        internal float QueryNorm2;
    }

    /// <summary>
    /// Prepares the query for every list: P·q of the code-space prefix, its tables quantized to 8 bits, and the per-query
    /// terms (about d·log d (structured P) or d² (dense P) + 16·d operations, once per search). The residual q − c of a list enters only through scalars
    /// (<see cref="PrepareList"/>): ⟨x̄, P(q − c)⟩ = ⟨x̄, P q⟩ − ⟨x̄, P c⟩, the last term folded into each code's A′.
    /// </summary>
    /// <param name="q">The query (code space; its d-prefix is used).</param>
    /// <param name="s">Scratch receiving the tables and terms.</param>
    /// <param name="rotated">P·q when already computed (<see cref="RotateBatch"/>); empty to compute it here.</param>
    public void PrepareQuery(ReadOnlySpan<float> q, QueryScratch s, ReadOnlySpan<float> rotated = default)
    {
        int d = Dimension, m = RaBitQKernels.SubCodes(d);
        var pq = s.Rotated;
        if (rotated.IsEmpty) Rotate(q[..d], pq);
        else rotated[..d].CopyTo(pq);
        RaBitQKernels.BuildTable(pq, s.Lut);
        float a = RaBitQKernels.QuantizeTable(s.Lut, m, s.Table, out float bias);
        int top = (1 << Bits) - 1;
        s.Scale = 1f / a;
        s.Offset = top * bias - top / 2f * TensorPrimitives.Sum(pq);
        s.QueryNorm2 = TensorPrimitives.Dot(q[..d], q[..d]);
        // Each table entry is off by at most half a step (uniform): the error of Σ over m sub-codes has standard
        // deviation √(m/12)/a per plane; planes read the same entries, so their weights add (2^b − 1).
        s.Noise = (float)(Epsilon0 * top * Math.Sqrt(m / 12.0) / a);
    }

    /// <summary>
    /// P·q of the d-prefixes of <paramref name="m"/> queries <paramref name="stride"/> floats apart, into
    /// <paramref name="output"/> (m × d): a dense P as one blocked matrix product (the d×d matrix is read once per group,
    /// not once per query), a structured one query by query.
    /// </summary>
    public void RotateBatch(ReadOnlySpan<float> queries, int stride, int m, Span<float> output)
    {
        int d = Dimension;
        if (m < 0 || stride < d || (m > 0 && queries.Length < (long)(m - 1) * stride + d) || output.Length < m * d)
            throw new ArgumentException($"{m} queries at stride {stride} need {(long)Math.Max(0, m - 1) * stride + d} floats and {m * d} output floats.");
        if (m == 0) return;
        if (Hadamard is { } h) h.ApplyBatch(queries, stride, m, output);
        else BlockKernels.DotBlock(queries, stride, m, Rotation!.MatrixRowMajor, d, d, d, output, d);
    }

    /// <summary>The key terms of list <paramref name="list"/> for the query prepared by <see cref="PrepareQuery"/> (d operations).</summary>
    public void PrepareList(ReadOnlySpan<float> q, int list, bool l2, QueryScratch s)
    {
        int d = Dimension;
        float qc = TensorPrimitives.Dot(q[..d], _centers.AsSpan(list * d, d));
        s.ListConstant = -(l2 ? 2f : 1f) * qc;
        s.BoundScale = Epsilon0 * MathF.Sqrt(MathF.Max(0f, s.QueryNorm2 - 2 * qc + _centerNorms2[list]));
    }

    /// <summary>The estimated key of one code from its table sum (reference path; the scan inlines it).</summary>
    public static float Key(QueryScratch s, int sum, ReadOnlySpan<float> factors) =>
        s.ListConstant + factors[0] + factors[1] * (s.Scale * sum + s.Offset);

    /// <summary>The error bound of one code's estimated key (reference path; the scan inlines it).</summary>
    public static float Bound(QueryScratch s, ReadOnlySpan<float> factors) => s.BoundScale * factors[2] + s.Noise * MathF.Abs(factors[1]);

    /// <summary>
    /// Scalar reference of the whole estimate for tests: the key of an unpacked code (as <see cref="Encode"/> writes it)
    /// and its bound, with the table sum computed value by value.
    /// </summary>
    public float ReferenceKey(ReadOnlySpan<byte> code, QueryScratch s, out float bound)
    {
        int d = Dimension;
        int sum = RaBitQKernels.RowSum(code[..d], Bits, s.Table);
        var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code.Slice(d, Factors * sizeof(float)));
        bound = Bound(s, f);
        return Key(s, sum, f);
    }

    /// <summary>
    /// A code as format 1.8 files store it (d values, then A, S, E, Σu: the first factor without the centre term) turned
    /// into this layout (d values, then A′ = A − S·⟨v, P c⟩, S, E) for list <paramref name="list"/>.
    /// </summary>
    public void FromStoredV18(ReadOnlySpan<byte> stored, int list, Span<byte> code)
    {
        int d = Dimension;
        var f = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(stored.Slice(d, 4 * sizeof(float)));
        stored[..d].CopyTo(code);
        var g = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(code.Slice(d, Factors * sizeof(float)));
        g[0] = (float)(f[0] - f[1] * CentreTerm(stored[..d], list));
        g[1] = f[1];
        g[2] = f[2];
    }

    /// <summary>⟨v, P c⟩ of a code's values u (v = u − (2^b − 1)/2) and list <paramref name="list"/>'s rotated centre.</summary>
    private double CentreTerm(ReadOnlySpan<byte> u, int list)
    {
        int d = Dimension;
        var pc = _rotatedCenters.AsSpan(list * d, d);
        double half = ((1 << Bits) - 1) / 2.0, t = 0;
        for (int j = 0; j < d; j++) t += (u[j] - half) * pc[j];
        return t;
    }
}
