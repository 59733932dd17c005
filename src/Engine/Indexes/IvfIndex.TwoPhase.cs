namespace Adanns.Engine.Indexes;

/// <summary>
/// Two-phase search for an index that reads its full vectors from an external source (<see cref="UseExternalVectors"/>),
/// so a caller that serialises searches with writes by a lock need not hold it while those vectors are read from disk:
/// <see cref="SearchShortlist"/> (under the caller's lock) scans the codes and names the shortlist's ids; the caller
/// reads their vectors; <see cref="RerankShortlist"/> (no lock needed) reranks them. The second phase reads only what no
/// write changes (rotation, metric, codec, dimensions), so it may run after the index changed or was replaced. Together
/// they return what <see cref="Search(ReadOnlySpan{float}, int, Span{long}, Span{float}, SearchParams?, IIdFilter?, out SearchStats)"/>
/// returns for the same rows.
/// </summary>
public sealed partial class IvfIndex
{
    /// <summary>True when a search resolved to <paramref name="r"/> reranks rows read from the external source (the two-phase path applies).</summary>
    public bool RerankReadsSource(in ResolvedSearch r) => _rows is null && _source is not null && !r.Exact && r.Rerank.Count > 0;

    /// <summary>
    /// Phase one (see the class remarks; only when <see cref="RerankReadsSource"/>): the shortlist of <paramref name="query"/>,
    /// in slot order — ids into <paramref name="candidateIds"/>, scan keys into <paramref name="candidateKeys"/> (each at
    /// least <c>r.Shortlist</c> long). Returns its length; <paramref name="firstStage"/> is for <see cref="RerankShortlist"/>.
    /// </summary>
    public int SearchShortlist(ReadOnlySpan<float> query, int k, in ResolvedSearch r, IIdFilter? filter, Span<long> candidateIds, Span<float> candidateKeys,
        out int firstStage, out SearchStats stats)
    {
        if (!RerankReadsSource(r)) throw new InvalidOperationException("The two-phase search applies only to a rerank read from an external vector source.");
        CheckVector(query, 0);
        if (candidateIds.Length < r.Shortlist || candidateKeys.Length < r.Shortlist)
            throw new ArgumentException($"Candidate spans must hold the shortlist ({r.Shortlist}).");
        stats = default;
        Interlocked.Increment(ref _searchers);
        try
        {
            var s = t_scratch ??= new Scratch();
            int D = Dimension;
            var q = s.Query(D);
            if (Rotation is null) query.CopyTo(q); else Rotation.Apply(query, q);
            stats.Queries++;
            stats.Flops += RotationFlops;
            var shortKeys = s.ShortKeys(r.Shortlist);
            var shortSlots = s.ShortIds(r.Shortlist);
            int found = Scan(q, r, filter, shortKeys, shortSlots, s, ref stats);
            firstStage = 0;
            if (FirstStageReads8Bit(r) && found > 0)
            {
                found = Stage8(q, r, k, shortKeys, shortSlots, found, s, ref stats);
                firstStage = 1;
            }
            InSlotOrder(shortKeys[..found], shortSlots[..found]);
            for (int j = 0; j < found; j++)
            {
                candidateIds[j] = _slotIds[shortSlots[j]];
                candidateKeys[j] = shortKeys[j];
            }
            return found;
        }
        finally
        {
            Interlocked.Decrement(ref _searchers);
        }
    }

    /// <summary>
    /// Phase two: reranks a shortlist from <see cref="SearchShortlist"/> (the caller may drop candidates, keeping the order)
    /// with their full vectors <paramref name="rows"/> (n × D, caller space, as the source returns them). Writes the best
    /// k as positions in the shortlist given (−1 past the end) and their scores.
    /// </summary>
    public void RerankShortlist(ReadOnlySpan<float> query, int k, in ResolvedSearch r, int firstStage, ReadOnlySpan<float> candidateKeys, ReadOnlySpan<float> rows,
        Span<long> positions, Span<float> scores, ref SearchStats stats)
    {
        int D = Dimension, n = candidateKeys.Length;
        if (rows.Length < (long)n * D) throw new ArgumentException($"Rows hold {rows.Length} floats; {n} × {D} needed.", nameof(rows));
        if (positions.Length < k || scores.Length < k) throw new ArgumentException($"Output spans must hold k = {k} entries.");
        var s = t_scratch ??= new Scratch();
        var q = s.Query(D);
        if (Rotation is null) query.CopyTo(q); else Rotation.Apply(query, q); // phase one counted its multiply-adds
        ReadOnlySpan<float> inIndexSpace = rows[..(n * D)];
        if (Rotation is not null && n > 0)
        {
            var rotated = s.ExternalRows(n * D);
            Rotation.ApplyBatch(inIndexSpace, rotated);
            inIndexSpace = rotated;
        }
        Finish(q, k, r, firstStage, candidateKeys, default, inIndexSpace, positions, scores, s, ref stats, outputPositions: true);
    }
}
