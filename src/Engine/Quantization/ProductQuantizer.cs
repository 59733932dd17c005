using Adanns.Engine.Clustering;
using Adanns.Kernels;

namespace Adanns.Engine.Quantization;

/// <summary>
/// Product quantizer: a d-dim vector is cut into <see cref="M"/> sub-vectors of <see cref="Dsub"/> dims, each
/// replaced by the index of its nearest of <see cref="Ksub"/> sub-centroids: 256 for 8-bit codes (M bytes per vector)
/// or 16 for 4-bit codes (M/2 bytes, scanned by <see cref="FastScanKernels"/>). Distances to a query are asymmetric
/// (ADC): the query stays in float, a per-query table holds its distance to every sub-centroid, and a code's distance
/// is the sum of M table entries (<see cref="PqKernels.Scan"/>).
/// </summary>
/// <remarks>Codes are handled one value per sub-quantizer (a byte each) by <see cref="Encode"/> and
/// <see cref="Decode"/> whatever the bit width; packing 4-bit codes two per byte is the index's storage concern.</remarks>
public sealed class ProductQuantizer
{
    private readonly float[] _codebooks;   // M × Ksub × dsub: sub-centroid c of sub-quantizer j at (j·Ksub + c)·dsub
    private readonly float[] _codebooksT;  // M × dsub × Ksub: the layout the table kernel streams
    private readonly float[] _norms;       // M × Ksub: ‖sub-centroid‖², the bias of an L2 table

    private ProductQuantizer(int dimension, int m, int bits, float[] codebooks)
    {
        Dimension = dimension;
        M = m;
        Bits = bits;
        Ksub = 1 << bits;
        Dsub = dimension / m;
        _codebooks = codebooks;
        _codebooksT = new float[codebooks.Length];
        _norms = new float[m * Ksub];
        for (int j = 0; j < m; j++)
            for (int c = 0; c < Ksub; c++)
            {
                var cen = codebooks.AsSpan((j * Ksub + c) * Dsub, Dsub);
                _norms[j * Ksub + c] = VectorMath.NormSquared(cen);
                for (int t = 0; t < Dsub; t++)
                    _codebooksT[(j * Dsub + t) * Ksub + c] = cen[t];
            }
    }

    /// <summary>Dims quantized (d = M·Dsub).</summary>
    public int Dimension { get; }

    /// <summary>Sub-quantizers (values per code).</summary>
    public int M { get; }

    /// <summary>Bits per sub-quantizer code: 8 (256 centroids) or 4 (16 centroids).</summary>
    public int Bits { get; }

    /// <summary>Centroids per sub-quantizer, 2^<see cref="Bits"/>.</summary>
    public int Ksub { get; }

    /// <summary>Bytes one packed code takes: M for 8-bit codes, M/2 for 4-bit.</summary>
    public int CodeBytes => Bits == 8 ? M : M / 2;

    /// <summary>Dims per sub-quantizer.</summary>
    public int Dsub { get; }

    /// <summary>The codebooks, M × Ksub × Dsub (for serialisation).</summary>
    public ReadOnlySpan<float> Codebooks => _codebooks;

    /// <summary>
    /// Trains M sub-quantizers (2^bits-means each) on <paramref name="n"/> rows of <paramref name="x"/> (n×d).
    /// <paramref name="warmStart"/> continues from earlier codebooks (OPQ's alternation) instead of seeding; its bit
    /// width is kept.
    /// </summary>
    public static ProductQuantizer Train(float[] x, int n, int d, int m, KMeansOptions? options = null, ProductQuantizer? warmStart = null,
        CancellationToken cancellationToken = default, int bits = 8)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (warmStart is not null) bits = warmStart.Bits;
        Validate(d, m, bits);
        int ksub = 1 << bits;
        if (n < ksub)
            throw new ArgumentException($"Product quantization needs at least {ksub} training vectors; got {n}.", nameof(n));
        if (warmStart is not null && (warmStart.Dimension != d || warmStart.M != m))
            throw new ArgumentException("The warm-start quantizer has a different shape.", nameof(warmStart));
        int dsub = d / m;
        var o = options ?? new KMeansOptions(MaxIterations: 25);
        var codebooks = new float[m * ksub * dsub];
        // Each sub-quantizer learns from at most PointsPerCentroid × Ksub of the rows, evenly spaced (as faiss caps
        // its PQ training at 256 points per centroid): a 16-centroid codebook on 2 dims is placed as well by 4,096
        // points as by 10,000, and M of them are trained, so a 4-bit PQ128 on 10,000 rows spent 2.6 s of a 13 s
        // Fashion-MNIST build here. 8-bit codebooks keep every row up to 65,536 at the default.
        int used = (int)Math.Min(n, (long)ksub * o.PointsPerCentroid);
        var sub = new float[(long)used * dsub];
        for (int j = 0; j < m; j++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (int i = 0; i < used; i++)
                x.AsSpan((int)((long)i * n / used) * d + j * dsub, dsub).CopyTo(sub.AsSpan(i * dsub, dsub));
            // Without a warm start, seed with Ksub distinct random rows (as FAISS does for PQ): k-means++ costs more
            // than the Lloyd iterations at these small dims and buys little with 256 centroids.
            float[] init = warmStart?._codebooks.AsSpan(j * ksub * dsub, ksub * dsub).ToArray()
                ?? RandomRows(sub, used, dsub, ksub, new Random(o.Seed + j));
            // Each sub-quantizer gets its own seed so they do not all start from the same sample rows.
            var km = KMeans.TrainRows(sub, used, dsub, ksub, spherical: false, o with { Seed = o.Seed + j }, init,
                cancellationToken: cancellationToken);
            km.Centroids.CopyTo(codebooks.AsSpan(j * ksub * dsub));
        }
        return new ProductQuantizer(d, m, bits, codebooks);
    }

    private static float[] RandomRows(float[] x, int n, int dim, int ksub, Random rng)
    {
        var picked = new HashSet<int>();
        var rows = new float[ksub * dim];
        for (int c = 0; c < ksub; c++)
        {
            int i;
            do i = rng.Next(n); while (!picked.Add(i));
            x.AsSpan(i * dim, dim).CopyTo(rows.AsSpan(c * dim, dim));
        }
        return rows;
    }

    /// <summary>Rebuilds a quantizer from stored codebooks (M × 2^bits × d/M floats).</summary>
    public static ProductQuantizer FromCodebooks(int d, int m, ReadOnlySpan<float> codebooks, int bits = 8)
    {
        Validate(d, m, bits);
        if (codebooks.Length != d << bits)
            throw new ArgumentException($"A {d}-dim PQ{m}x{bits} needs {d << bits} codebook floats; got {codebooks.Length}.");
        foreach (float v in codebooks)
            if (!float.IsFinite(v)) throw new ArgumentException("Codebooks contain NaN or infinite values.");
        return new ProductQuantizer(d, m, bits, codebooks.ToArray());
    }

    private static void Validate(int d, int m, int bits)
    {
        if (m <= 0 || d <= 0) throw new ArgumentOutOfRangeException(nameof(m), $"PQ needs positive d and M (got d={d}, M={m}).");
        if (d % m != 0) throw new ArgumentException($"PQ{m} needs d divisible by M; d = {d}.");
        if (bits != 8 && bits != 4) throw new ArgumentOutOfRangeException(nameof(bits), bits, "PQ codes are 8 or 4 bits per sub-quantizer.");
        if (bits == 4 && (m & 1) != 0) throw new ArgumentException($"4-bit PQ packs two codes per byte: M must be even (got {m}).");
    }

    /// <summary>
    /// Per-query table (M × Ksub) for <paramref name="q"/> (d dims). Inner product: entry = q_j·c. L2: entry =
    /// ‖c‖² − 2 q_j·c, so Σ entries + ‖q‖² is the squared distance to the decoded vector.
    /// </summary>
    public void ComputeTable(ReadOnlySpan<float> q, bool innerProduct, Span<float> lut)
    {
        if (innerProduct) PqKernels.BuildTable(q, _codebooksT, M, Dsub, Ksub, 1f, default, lut);
        else PqKernels.BuildTable(q, _codebooksT, M, Dsub, Ksub, -2f, _norms, lut);
    }

    /// <summary>Encodes one d-dim vector into M values (one byte each). <paramref name="scratch"/>: M×Ksub floats.</summary>
    public void Encode(ReadOnlySpan<float> x, Span<byte> code, Span<float> scratch)
    {
        if (x.Length < Dimension) throw new ArgumentException($"Vector has {x.Length} dims; PQ needs {Dimension}.", nameof(x));
        if (code.Length < M) throw new ArgumentException($"Code buffer holds {code.Length} bytes; {M} needed.", nameof(code));
        // Nearest sub-centroid = smallest ‖c‖² − 2x·c: the L2 table of x itself, then an argmin per row.
        var table = scratch[..(M * Ksub)];
        ComputeTable(x, innerProduct: false, table);
        for (int j = 0; j < M; j++)
        {
            // First minimum: ties go to the lower centroid, as in k-means assignment.
            code[j] = (byte)System.Numerics.Tensors.TensorPrimitives.IndexOfMin(table.Slice(j * Ksub, Ksub));
        }
    }

    /// <summary>Encodes n rows (n×d) into codes (n×M), on <paramref name="threads"/> threads (0 = all cores).</summary>
    public void EncodeBatch(float[] x, int n, byte[] codes, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(codes);
        if (x.Length < (long)n * Dimension || codes.Length < (long)n * M)
            throw new ArgumentException($"{n} rows need {(long)n * Dimension} floats and {(long)n * M} code bytes.");
        if (threads <= 0) threads = Environment.ProcessorCount;
        threads = Math.Max(1, Math.Min(threads, n / 1024 + 1));
        int d = Dimension, m = M;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var scratch = new float[m * Ksub];
            int a = (int)((long)n * t / threads), b = (int)((long)n * (t + 1) / threads);
            for (int i = a; i < b; i++)
                Encode(x.AsSpan(i * d, d), codes.AsSpan(i * m, m), scratch);
        });
    }

    /// <summary>Decodes one code into its d-dim reconstruction.</summary>
    public void Decode(ReadOnlySpan<byte> code, Span<float> x)
    {
        if (code.Length < M || x.Length < Dimension) throw new ArgumentException($"Need {M} code bytes and {Dimension} output floats.");
        for (int j = 0; j < M; j++)
            _codebooks.AsSpan((j * Ksub + code[j]) * Dsub, Dsub).CopyTo(x.Slice(j * Dsub, Dsub));
    }

    /// <summary>Mean squared reconstruction error over n rows (n×d).</summary>
    public double QuantizationError(float[] x, int n)
    {
        var code = new byte[M];
        var rec = new float[Dimension];
        var scratch = new float[M * Ksub];
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            var row = x.AsSpan(i * Dimension, Dimension);
            Encode(row, code, scratch);
            Decode(code, rec);
            sum += VectorMath.L2Squared(row, rec);
        }
        return n > 0 ? sum / n : 0;
    }
}
