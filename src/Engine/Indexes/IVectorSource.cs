namespace Adanns.Engine.Indexes;

/// <summary>
/// A batch reader of full vectors by external id: the seam through which an index that does not keep its full
/// vectors resident (a <see cref="IvfIndex"/> after <see cref="IvfIndex.UseExternalVectors"/>) reads the shortlist for
/// rerank — one call per query, or per chunk of queries in a batch search.
/// </summary>
/// <remarks>
/// Vectors are returned in the caller's space, exactly as they were added to the index (unrotated): an index with a
/// rotation applies it after reading. Implementations must be safe to call from several searching threads at once.
/// </remarks>
public interface IVectorSource
{
    /// <summary>Dimension D of every vector.</summary>
    int Dimension { get; }

    /// <summary>
    /// Writes the vector of each id in <paramref name="ids"/> to <paramref name="destination"/> (ids.Length × D,
    /// row-major, in the order of <paramref name="ids"/>). Every id must be live in the index that asks; a missing id
    /// is an error (the source and the index disagree) and throws.
    /// </summary>
    void Read(ReadOnlySpan<long> ids, Span<float> destination);
}
