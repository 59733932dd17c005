using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

/// <summary>The exact rerank key shared by every index: one rule, so IVF and PQ rerank stages rank alike.</summary>
internal static class RerankKey
{
    /// <summary>
    /// Key (smaller is better) of a stored row at the prefix d: −q·x (inner product), ‖x‖² − 2q·x (L2, without the
    /// constant ‖q‖²), or −q·x/‖x‖ (cosine, without the constant ‖q‖; a zero row scores 0).
    /// </summary>
    public static float Of(Metric metric, ReadOnlySpan<float> q, ReadOnlySpan<float> row, int d)
    {
        var x = row[..d];
        var qd = q[..d];
        switch (metric)
        {
            case Metric.InnerProduct:
                return -VectorMath.Dot(qd, x);
            case Metric.L2:
                {
                    var (dot, _, xx) = VectorMath.DotAndNorms(qd, x);
                    return xx - 2 * dot;
                }
            default:
                {
                    var (dot, _, xx) = VectorMath.DotAndNorms(qd, x);
                    return xx > 0 ? -dot / MathF.Sqrt(xx) : 0f;
                }
        }
    }

    /// <summary>
    /// Turns a scan's dot products (and, for L2 and cosine, the rows' squared prefix norms) into the same keys as
    /// <see cref="Of"/>, in place in <paramref name="dots"/>; <paramref name="norms2"/> is overwritten for cosine.
    /// </summary>
    public static void ToKeys(Span<float> dots, Span<float> norms2, Metric metric)
    {
        switch (metric)
        {
            case Metric.L2:
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(dots, -2f, norms2, dots); // ‖x‖² − 2q·x (+‖q‖², constant)
                break;
            case Metric.Cosine:
                // −q·x / ‖x‖ (query norm constant). A zero vector has dot 0: flooring its norm makes the key 0, not NaN.
                System.Numerics.Tensors.TensorPrimitives.Sqrt(norms2, norms2);
                System.Numerics.Tensors.TensorPrimitives.Max(norms2, 1e-30f, norms2);
                System.Numerics.Tensors.TensorPrimitives.Divide(dots, norms2, dots);
                System.Numerics.Tensors.TensorPrimitives.Negate(dots, dots);
                break;
            default:
                System.Numerics.Tensors.TensorPrimitives.Negate(dots, dots);
                break;
        }
    }
}
