namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    /// <inheritdoc/>
    public ComputeProfile? ComputeProfile { get; private set; }

    /// <summary>
    /// Measures recall@k, FLOPs and single-thread microseconds per query over a grid of (nprobe, scan dim, shortlist),
    /// using a seeded sample of the index's own vectors as queries, keeps the Pareto frontier as
    /// <see cref="ComputeProfile"/> and returns it.
    /// </summary>
    /// <remarks>
    /// May run concurrently with searches (which keep using the previous profile until this one is stored), not
    /// with Add / Remove / Compact. Timings are only meaningful on an otherwise idle core. The profile describes
    /// the index as it is now: re-profile after adding or removing a large share of the vectors.
    /// </remarks>
    public ComputeProfile Profile(ProfileOptions? options = null)
    {
        var o = options ?? new ProfileOptions();
        var funnels = IndexProfiler.CheckAll(o, this, Spec.Rerank);
        int D = Dimension;
        int dc = o.CoarseDim ?? CoarseDim;
        if (dc < 1 || dc > D) throw new ArgumentOutOfRangeException(nameof(options), dc, $"Profile coarse dim must be in [1, {D}].");
        var nprobes = IndexProfiler.Distinct(o.NProbes ?? IndexProfiler.PowersOfTwo(NList), 1, NList, "nprobe", nameof(options));
        var scanDims = IndexProfiler.Distinct(o.ScanDims ?? IndexProfiler.DefaultScanDims(ScanStoreDims), 1, D, "scan dim", nameof(options));
        var multiples = IndexProfiler.Distinct(o.ShortlistMultiples ?? [4, 10, 30], 1, int.MaxValue / o.K, "shortlist multiple", nameof(options));
        var series = funnels.SelectMany(rerank => IndexProfiler.Grid(o.K, dc, scanDims, multiples, rerank, nprobes)).ToList();
        var ids = _idToSlot.Keys.ToArray();
        Array.Sort(ids);
        var profile = IndexProfiler.Measure(this, o, ids, series);
        ComputeProfile = profile;
        return profile;
    }

    /// <summary>Turns a budgeted request into the chosen profile point's concrete parameters, resolved as usual.</summary>
    private ResolvedSearch ResolveBudget(SearchParams p, int k)
    {
        var concrete = IndexProfiler.BudgetParams(ComputeProfile, p, k, out int point, out bool over);
        return Resolve(concrete, k) with { BudgetPoint = point, OverBudget = over, PredictedRecall = ComputeProfile!.Points[point].Recall };
    }

}
