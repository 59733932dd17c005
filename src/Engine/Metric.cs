namespace Adanns.Engine;

/// <summary>
/// How two vectors are compared. Every index reports a <em>score</em> per result; its direction depends on
/// the metric and is fixed here so callers never have to guess:
/// <list type="bullet">
/// <item><see cref="L2"/>: score = squared Euclidean distance over the prefix used; lower is better.</item>
/// <item><see cref="InnerProduct"/>: score = q·x over the prefix used (no renormalisation); higher is better.</item>
/// <item><see cref="Cosine"/>: score = cos(q[:d], x[:d]) — each prefix is L2-renormalised before use, which
/// is what Matryoshka (MRL / AdANNS) search does; higher is better, in [-1, 1].</item>
/// </list>
/// </summary>
public enum Metric
{
    /// <summary>Squared Euclidean distance; lower is better.</summary>
    L2 = 0,

    /// <summary>Inner product; higher is better.</summary>
    InnerProduct = 1,

    /// <summary>Cosine similarity of the L2-renormalised prefixes; higher is better.</summary>
    Cosine = 2,
}

/// <summary>Helpers on <see cref="Metric"/>.</summary>
public static class MetricExtensions
{
    /// <summary>True when a larger score means a closer neighbour (inner product, cosine).</summary>
    public static bool HigherIsBetter(this Metric metric) => metric != Metric.L2;

    /// <summary>Parses "l2", "ip" / "inner_product" / "dot", "cosine" / "cos" / "angular" (case-insensitive).</summary>
    public static Metric Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "l2" or "euclidean" => Metric.L2,
        "ip" or "inner_product" or "innerproduct" or "dot" => Metric.InnerProduct,
        "cosine" or "cos" or "angular" => Metric.Cosine,
        _ => throw new ArgumentException($"Unknown metric '{text}': expected l2, ip or cosine.", nameof(text)),
    };

    /// <summary>Short name used in files and on the command line: l2, ip, cosine.</summary>
    public static string ToShortName(this Metric metric) => metric switch
    {
        Metric.L2 => "l2",
        Metric.InnerProduct => "ip",
        Metric.Cosine => "cosine",
        _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown metric."),
    };
}
