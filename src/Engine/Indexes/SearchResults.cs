namespace Adanns.Engine.Indexes;

/// <summary>
/// Results of a batch of nq queries: <see cref="Ids"/> and <see cref="Scores"/> are nq×k row-major, best
/// first per query; missing entries are id −1 with the metric's worst score.
/// </summary>
public sealed class SearchResults
{
    /// <summary>Allocates room for <paramref name="queryCount"/>×<paramref name="k"/> results.</summary>
    public SearchResults(int queryCount, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(queryCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        QueryCount = queryCount;
        K = k;
        Ids = new long[(long)queryCount * k];
        Scores = new float[(long)queryCount * k];
    }

    /// <summary>Number of queries nq.</summary>
    public int QueryCount { get; }

    /// <summary>Results per query.</summary>
    public int K { get; }

    /// <summary>nq×k ids, row-major.</summary>
    public long[] Ids { get; }

    /// <summary>nq×k scores, row-major.</summary>
    public float[] Scores { get; }

    /// <summary>The k ids of query <paramref name="q"/>.</summary>
    public ReadOnlySpan<long> IdsOf(int q) => Ids.AsSpan(q * K, K);

    /// <summary>The k scores of query <paramref name="q"/>.</summary>
    public ReadOnlySpan<float> ScoresOf(int q) => Scores.AsSpan(q * K, K);
}
