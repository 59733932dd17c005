namespace Adanns.Engine.Indexes;

/// <summary>
/// Per-query search parameters. A null field means "the index default" (from its <see cref="IndexSpec"/>);
/// they are resolved and validated once at the top of each search call.
/// </summary>
public sealed record SearchParams
{
    /// <summary>Lists probed.</summary>
    public int? NProbe { get; init; }

    /// <summary>Dim used to rank centroids (d_c'); any value ≤ D works on any index (no rebuild).</summary>
    public int? CoarseDim { get; init; }

    /// <summary>Dim used to scan the probed lists (d_s).</summary>
    public int? ScanDim { get; init; }

    /// <summary>Candidates kept by the scan for reranking (≥ k).</summary>
    public int? Shortlist { get; init; }

    /// <summary>Rerank stages (dim and how many to keep); an empty list disables reranking.</summary>
    public IReadOnlyList<RerankStage>? Rerank { get; init; }

    /// <summary>Exact search over every live vector at the final dim, bypassing the lists' pruning.</summary>
    public bool? Exact { get; init; }

    /// <summary>
    /// Compute budget: at most this many distance FLOPs per query (as counted by <see cref="SearchStats.Flops"/>).
    /// With a budget the index picks NProbe, CoarseDim, ScanDim, Shortlist and Rerank from its
    /// <see cref="IVectorIndexReader.ComputeProfile"/> (the best-recall point that fits), so those must be left null.
    /// </summary>
    public double? MaxFlops { get; init; }

    /// <summary>
    /// Latency budget: at most this many microseconds per query (single thread, as measured when the index was
    /// profiled). Combines with <see cref="MaxFlops"/>: the chosen configuration fits both.
    /// </summary>
    public double? MaxMicros { get; init; }

    /// <summary>
    /// Recall target in (0, 1]: the index runs the cheapest point of its <see cref="IVectorIndexReader.ComputeProfile"/>
    /// whose measured recall@k reaches it (within <see cref="MaxFlops"/> / <see cref="MaxMicros"/> when those are set too;
    /// when no point reaches it, the best-recall point that fits). Like a budget, it leaves the other knobs to the profile.
    /// </summary>
    public double? TargetRecall { get; init; }

    /// <summary>Whether the index picks the knobs from its profile (a budget or a recall target is set).</summary>
    internal bool UsesProfile => MaxFlops is not null || MaxMicros is not null || TargetRecall is not null;

    /// <summary>Whether nothing is set: the search runs at the index's defaults (a tuned index: at its tuned recall).</summary>
    internal bool IsUnset => NProbe is null && CoarseDim is null && ScanDim is null && Shortlist is null && Rerank is null && Exact is null && !UsesProfile;
}

/// <summary>Validation shared by every index's <c>Resolve</c>, so the rules and messages cannot drift apart.</summary>
internal static class SearchParamsChecks
{
    /// <summary>Shortlist ≥ k; every rerank stage at a dim in [1, D] keeping at least k.</summary>
    public static void CheckShortlistAndRerank(int shortlist, IReadOnlyList<RerankStage> rerank, int dimension, int k)
    {
        if (shortlist < k)
            throw new ArgumentOutOfRangeException("p", shortlist, $"Shortlist ({shortlist}) must be at least k ({k}).");
        for (int i = 0; i < rerank.Count; i++)
        {
            var st = rerank[i];
            if (st.Dim < 1 || st.Dim > dimension)
                throw new ArgumentOutOfRangeException("p", st.Dim, $"Rerank dim must be in [1, {dimension}] (got {st.Dim}).");
            if (st.Keep is { } keep && keep < k)
                throw new ArgumentOutOfRangeException("p", keep, $"Rerank stage {i + 1} keeps {keep}, fewer than k ({k}).");
        }
    }
}

/// <summary>Work done by one search (or summed over a batch).</summary>
public struct SearchStats
{
    /// <summary>Queries these counts are summed over.</summary>
    public long Queries;

    /// <summary>Inverted lists scanned.</summary>
    public long ListsProbed;

    /// <summary>Vectors whose distance was computed during the list scan.</summary>
    public long VectorsScanned;

    /// <summary>Candidate rescorings over all rerank stages.</summary>
    public long VectorsReranked;

    /// <summary>Distance FLOPs: Σ dims over every distance computed (centroids, scan, rerank), one multiply-add per dim.</summary>
    public long Flops;

    /// <summary>Adds another query's counts.</summary>
    public void Add(in SearchStats other)
    {
        Queries += other.Queries;
        ListsProbed += other.ListsProbed;
        VectorsScanned += other.VectorsScanned;
        VectorsReranked += other.VectorsReranked;
        Flops += other.Flops;
    }

    /// <summary>Mean FLOPs per query.</summary>
    public readonly double FlopsPerQuery => Queries > 0 ? (double)Flops / Queries : 0;
}

/// <summary>The parameters a search actually used, after defaults (or a compute budget) were applied.</summary>
/// <param name="NProbe">Lists probed.</param>
/// <param name="CoarseDim">Dim the centroids were ranked at.</param>
/// <param name="ScanDim">Dim the probed lists were scanned at.</param>
/// <param name="Shortlist">Candidates kept by the scan.</param>
/// <param name="Rerank">Rerank stages run.</param>
/// <param name="Exact">Whether the search was exact.</param>
/// <param name="BudgetPoint">Index into <see cref="ComputeProfile.Points"/> a budget chose; −1 without a budget.</param>
/// <param name="OverBudget">True when no profiled configuration fit the budget and the cheapest one was used instead.</param>
/// <param name="PredictedRecall">The profiled recall@k of the chosen point (a budget or a recall target chose it); null otherwise.</param>
public readonly record struct ResolvedSearch(int NProbe, int CoarseDim, int ScanDim, int Shortlist, IReadOnlyList<RerankStage> Rerank, bool Exact,
    int BudgetPoint = -1, bool OverBudget = false, double? PredictedRecall = null);
