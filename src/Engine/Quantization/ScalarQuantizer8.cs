namespace Adanns.Engine.Quantization;

/// <summary>
/// 8-bit scalar quantization of the first <see cref="Dimension"/> dims: x_j ≈ lo_j + step_j·c_j with c_j in
/// [0, 255], lo/step per dim from the training sample's range. A quarter of float32's bytes: used for the
/// in-list scan, whose shortlist is then reranked with exact float vectors.
/// </summary>
public sealed class ScalarQuantizer8
{
    private ScalarQuantizer8(float[] lo, float[] step)
    {
        Lo = lo;
        Step = step;
    }

    /// <summary>Dims quantized.</summary>
    public int Dimension => Lo.Length;

    /// <summary>Per-dim offset (the sample minimum).</summary>
    public float[] Lo { get; }

    /// <summary>Per-dim step ((max − min) / 255; a tiny positive value for constant dims).</summary>
    public float[] Step { get; }

    /// <summary>Learns per-dim ranges from the first <paramref name="dims"/> dims of <paramref name="sample"/>.</summary>
    public static ScalarQuantizer8 Train(VectorSet sample, int dims)
    {
        ArgumentNullException.ThrowIfNull(sample);
        if (dims <= 0 || dims > sample.Dimension)
            throw new ArgumentOutOfRangeException(nameof(dims), dims, $"Quantized dims must be in [1, {sample.Dimension}].");
        if (sample.Count == 0)
            throw new ArgumentException("Cannot train a quantizer on an empty sample.", nameof(sample));
        var lo = new float[dims];
        var hi = new float[dims];
        Array.Fill(lo, float.PositiveInfinity);
        Array.Fill(hi, float.NegativeInfinity);
        for (int i = 0; i < sample.Count; i++)
        {
            var x = sample.Prefix(i, dims);
            for (int j = 0; j < dims; j++)
            {
                if (x[j] < lo[j]) lo[j] = x[j];
                if (x[j] > hi[j]) hi[j] = x[j];
            }
        }
        var step = new float[dims];
        for (int j = 0; j < dims; j++)
            step[j] = hi[j] > lo[j] ? (hi[j] - lo[j]) / 255f : 1e-12f;
        return new ScalarQuantizer8(lo, step);
    }

    /// <summary>Learns per-dim ranges from <paramref name="n"/> row-major rows of <paramref name="dims"/> dims.</summary>
    public static ScalarQuantizer8 TrainRows(ReadOnlySpan<float> rows, int n, int dims)
    {
        if (dims <= 0 || n <= 0 || rows.Length < (long)n * dims)
            throw new ArgumentException($"Need {n} rows of {dims} dims (n, dims ≥ 1); got {rows.Length} floats.");
        var lo = new float[dims];
        var hi = new float[dims];
        Array.Fill(lo, float.PositiveInfinity);
        Array.Fill(hi, float.NegativeInfinity);
        for (int i = 0; i < n; i++)
        {
            var x = rows.Slice(i * dims, dims);
            for (int j = 0; j < dims; j++)
            {
                lo[j] = MathF.Min(lo[j], x[j]);
                hi[j] = MathF.Max(hi[j], x[j]);
            }
        }
        var step = new float[dims];
        for (int j = 0; j < dims; j++)
            step[j] = hi[j] > lo[j] ? (hi[j] - lo[j]) / 255f : 1e-12f;
        return new ScalarQuantizer8(lo, step);
    }

    /// <summary>Rebuilds a quantizer from stored parameters.</summary>
    public static ScalarQuantizer8 FromParameters(float[] lo, float[] step)
    {
        ArgumentNullException.ThrowIfNull(lo);
        ArgumentNullException.ThrowIfNull(step);
        if (lo.Length != step.Length || lo.Length == 0)
            throw new ArgumentException("Offsets and steps must be non-empty and of equal length.");
        foreach (var s in step)
            if (!(s > 0) || !float.IsFinite(s)) throw new ArgumentException("Steps must be finite and positive.");
        return new ScalarQuantizer8(lo, step);
    }

    /// <summary>
    /// Reads dims offsets then dims steps (as index files store a quantizer) from a section payload; bad values are
    /// reported as a file error at <paramref name="offset"/> naming <paramref name="what"/>.
    /// </summary>
    internal static ScalarQuantizer8 Read(ref Persistence.PayloadReader r, string path, long offset, int dims, string what)
    {
        r.EnsureFits(2L * dims, 4, what);
        var lo = new float[dims];
        var step = new float[dims];
        r.Floats(lo, what);
        r.Floats(step, what);
        try
        {
            return FromParameters(lo, step);
        }
        catch (ArgumentException e)
        {
            throw new Persistence.IndexFileException(path, offset, $"{what} are invalid: {e.Message}", e);
        }
    }

    /// <summary>Codes for the first <see cref="Dimension"/> dims of <paramref name="x"/> (values outside the trained range clamp).</summary>
    public void Encode(ReadOnlySpan<float> x, Span<byte> codes)
    {
        for (int j = 0; j < Lo.Length; j++)
        {
            float c = MathF.Round((x[j] - Lo[j]) / Step[j]);
            codes[j] = (byte)Math.Clamp(c, 0f, 255f);
        }
    }

    /// <summary>x̂_j = lo_j + step_j·c_j.</summary>
    public void Decode(ReadOnlySpan<byte> codes, Span<float> x)
    {
        for (int j = 0; j < Lo.Length; j++)
            x[j] = Lo[j] + Step[j] * codes[j];
    }
}
