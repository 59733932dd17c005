using Adanns.Engine.Quantization;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>
/// An 8-bit scalar-quantized copy of every stored vector's d-dim prefix, by rerank-store slot, with each prefix's
/// exact squared norm: what an MRL funnel's first rerank stage reads instead of float rows (spec <c>Prefix8@{d}</c>).
/// </summary>
/// <remarks>
/// A first stage rescoring a few hundred candidates at d dims is bound by the bytes it gathers from scattered rows —
/// 4·d per candidate in float32. The copy holds d bytes per candidate (a quarter), always in memory, so with an
/// external vector source the stage also runs before any full vector is read. Dot products use an int8 query
/// (<see cref="Int8Kernels.DotRows"/>): q·x ≈ Σ (q_j·step_j)·c_j + q·lo, the first sum with the scaled query rounded
/// to int8. Estimates only narrow the candidates; the last stage always rescores with the float vectors.
/// </remarks>
internal sealed class PrefixStore8
{
    private byte[] _codes = [];
    private float[] _norms = [];

    public PrefixStore8(ScalarQuantizer8 quantizer)
    {
        Quantizer = quantizer;
    }

    /// <summary>Prefix dim d.</summary>
    public int Dim => Quantizer.Dimension;

    /// <summary>Per-dim ranges of the 8-bit codes.</summary>
    public ScalarQuantizer8 Quantizer { get; }

    /// <summary>Slots held (live and removed alike, as in the rerank store).</summary>
    public int Count { get; private set; }

    /// <summary>Bytes allocated (codes and norms, slack included).</summary>
    public long AllocatedBytes => _codes.LongLength + _norms.LongLength * 4;

    /// <summary>Encodes the next slot's prefix from its (index-space) full row.</summary>
    public void Append(ReadOnlySpan<float> row)
    {
        Grow();
        var x = row[..Dim];
        Quantizer.Encode(x, _codes.AsSpan(Count * Dim, Dim));
        _norms[Count] = VectorMath.NormSquared(x);
        Count++;
    }

    /// <summary>Appends a stored code and squared norm as read from an index file.</summary>
    public void AppendStored(ReadOnlySpan<byte> code, float norm2)
    {
        Grow();
        code[..Dim].CopyTo(_codes.AsSpan(Count * Dim, Dim));
        _norms[Count] = norm2;
        Count++;
    }

    /// <summary>Slot <paramref name="slot"/>'s code.</summary>
    public ReadOnlySpan<byte> Code(int slot) => _codes.AsSpan(slot * Dim, Dim);

    /// <summary>Slot <paramref name="slot"/>'s exact squared prefix norm.</summary>
    public float Norm2(int slot) => _norms[slot];

    /// <summary>Keeps the slots with remap[slot] ≥ 0, moved to remap[slot] (increasing, as compaction hands them out).</summary>
    public void Compact(ReadOnlySpan<int> remap, int live)
    {
        int d = Dim;
        var codes = new byte[Math.Max(1, live) * d];
        var norms = new float[Math.Max(1, live)];
        for (int slot = 0; slot < Count; slot++)
        {
            int to = remap[slot];
            if (to < 0) continue;
            _codes.AsSpan(slot * d, d).CopyTo(codes.AsSpan(to * d, d));
            norms[to] = _norms[slot];
        }
        _codes = codes;
        _norms = norms;
        Count = live;
    }

    /// <summary>
    /// Prepares a (rotated) query: <paramref name="qi"/> (d values) is q[:d]·step rounded to int8; returns the scale
    /// that rounding used and sets <paramref name="offset"/> = q[:d]·lo, so q·x̂ = dot(qi, code) / scale + offset.
    /// </summary>
    public float PrepareQuery(ReadOnlySpan<float> q, Span<float> scaled, Span<sbyte> qi, out float offset)
    {
        var qd = q[..Dim];
        System.Numerics.Tensors.TensorPrimitives.Multiply(qd, Quantizer.Step, scaled[..Dim]);
        offset = VectorMath.Dot(qd, Quantizer.Lo);
        return Int8Kernels.Quantize(scaled[..Dim], qi[..Dim]);
    }

    /// <summary>
    /// Rerank keys (smaller is better, the rule of <see cref="RerankKey"/>) of <paramref name="slots"/> at the prefix
    /// dim, from the 8-bit codes and exact norms.
    /// </summary>
    public void Keys(Metric metric, ReadOnlySpan<sbyte> qi, float scale, float offset, ReadOnlySpan<int> slots, Span<int> dots, Span<float> keys)
    {
        Int8Kernels.DotRows(qi[..Dim], _codes.AsSpan(0, Count * Dim), Dim, slots, dots);
        float inv = 1f / scale;
        // The metric is chosen once per call, not per candidate.
        switch (metric)
        {
            case Metric.InnerProduct:
                for (int i = 0; i < slots.Length; i++) keys[i] = -(dots[i] * inv + offset);
                break;
            case Metric.L2:
                for (int i = 0; i < slots.Length; i++) keys[i] = _norms[slots[i]] - 2 * (dots[i] * inv + offset);
                break;
            default:
                for (int i = 0; i < slots.Length; i++)
                {
                    float xx = _norms[slots[i]];
                    keys[i] = xx > 0 ? -(dots[i] * inv + offset) / MathF.Sqrt(xx) : 0f;
                }
                break;
        }
    }

    private void Grow()
    {
        if (Count < _norms.Length) return;
        int cap = Math.Max(64, _norms.Length * 2);
        Array.Resize(ref _norms, cap);
        Array.Resize(ref _codes, cap * Dim);
    }
}
