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

/// <summary>The parameters a search actually used, after defaults were applied.</summary>
public readonly record struct ResolvedSearch(int NProbe, int CoarseDim, int ScanDim, int Shortlist, IReadOnlyList<RerankStage> Rerank, bool Exact);
