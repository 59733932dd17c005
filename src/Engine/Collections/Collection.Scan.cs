using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

/// <summary>How one collection search ran.</summary>
/// <param name="Path">The path taken (exact, index, filtered).</param>
/// <param name="Used">The parameters the IVF index resolved (defaults or a budget applied); null when the search was
/// exact without the index (<see cref="SearchPath.Flat"/>, <see cref="SearchPath.ExactFiltered"/>).</param>
/// <param name="Stats">Work done: for the index paths as <see cref="IvfIndex"/> counts it; for exact paths every
/// row visited counts as scanned at the full dimension.</param>
public readonly record struct SearchReport(SearchPath Path, ResolvedSearch? Used, SearchStats Stats);

public sealed partial class Collection
{
    /// <summary>
    /// Ids of the live records whose payload matches <paramref name="filter"/> (all live records when null), at most
    /// <paramref name="limit"/> of them, in no particular order. A consistent snapshot: writes are applied either
    /// wholly before or wholly after it.
    /// </summary>
    public IReadOnlyList<RecordId> FindIds(Filter? filter, int limit = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        var found = new List<RecordId>();
        _lock.EnterReadLock();
        try
        {
            ThrowIfClosed();
            if (filter is null)
            {
                foreach (var m in _meta.Values)
                {
                    if (found.Count >= limit) break;
                    found.Add(m.Id);
                }
                return found;
            }
            using var bits = MatchingKeys(filter);
            var keys = new List<long>((int)Math.Min(bits.Count, limit));
            bits.CopyKeysTo(keys);
            for (int i = 0; i < keys.Count && found.Count < limit; i++) found.Add(_meta[keys[i]].Id);
        }
        finally { _lock.ExitReadLock(); }
        return found;
    }
}
