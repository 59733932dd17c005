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
}
