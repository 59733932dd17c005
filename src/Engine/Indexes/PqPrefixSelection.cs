using Adanns.Engine.Evaluation;

namespace Adanns.Engine.Indexes;

/// <summary>Options for <see cref="PqPrefixSelection.Select"/>.</summary>
/// <param name="HeldOut">Base vectors held out as validation queries.</param>
/// <param name="ValidationRows">Base vectors (other than the held-out ones) the validation index is built on.</param>
/// <param name="K">Recall@k is measured with this k.</param>
/// <param name="Build">Build options of each candidate index.</param>
public sealed record PrefixSelectionOptions(int HeldOut = 200, int ValidationRows = 20_000, int K = 10, PqBuildOptions? Build = null);

/// <summary>One candidate prefix dim and the validation recall@k of its ADC ranking (no rerank).</summary>
public readonly record struct PrefixCandidate(int Dim, double Recall, TimeSpan TrainTime);

/// <summary>The outcome of a prefix selection: every candidate measured, and the chosen (best-recall) spec.</summary>
public sealed record PrefixSelection(IReadOnlyList<PrefixCandidate> Candidates, PrefixCandidate Best, IndexSpec Spec);

/// <summary>
/// AdANNS-OPQ: for a byte budget m, the prefix dim d the codes should be learned on is a choice, not D by default.
/// Short prefixes give each sub-quantizer fewer dims (finer codes), long ones keep more of the signal; which wins
/// depends on the model. This trains a candidate per dim on a validation split of the base vectors and keeps the one
/// whose ADC ranking recalls best against exact search at full D.
/// </summary>
public static class PqPrefixSelection
{
    /// <summary>
    /// Measures every dim in <paramref name="dims"/> (default: m, 2m, 4m, … up to D, and D) for the spec
    /// <paramref name="template"/> (its PqDim is replaced) and returns all results and the best spec. Held-out queries
    /// are base vectors excluded from the validation index, so no query finds itself.
    /// </summary>
    public static PrefixSelection Select(VectorSet vectors, IndexSpec template, Metric metric, IEnumerable<int>? dims = null,
        PrefixSelectionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        ArgumentNullException.ThrowIfNull(template);
        if (!template.IsPq) throw new ArgumentException($"Index spec \"{template}\" has no PQ/OPQ component.", nameof(template));
        var o = options ?? new PrefixSelectionOptions();
        int D = vectors.Dimension, m = template.PqBytes!.Value;
        var candidates = (dims ?? DefaultDims(m, D)).Distinct().Order().ToArray();
        if (candidates.Length == 0) throw new ArgumentException("No candidate prefix dims.", nameof(dims));
        foreach (int d in candidates)
            (template with { PqDim = d }).Validate(D);
        if (o.HeldOut < 1 || o.K < 1) throw new ArgumentOutOfRangeException(nameof(options), "HeldOut and K must be positive.");
        if (vectors.Count < o.HeldOut + 256)
            throw new ArgumentException($"Prefix selection needs at least {o.HeldOut + 256} vectors; got {vectors.Count}.", nameof(vectors));

        // Split: every step-th row is a query, the others (up to ValidationRows) form the validation base.
        int step = vectors.Count / o.HeldOut;
        using var queries = new VectorSet(D, o.HeldOut);
        using var baseSet = new VectorSet(D, Math.Min(o.ValidationRows, vectors.Count));
        for (int i = 0; i < vectors.Count; i++)
        {
            if (i % step == 0 && queries.Count < o.HeldOut) queries.Add(vectors.Row(i));
            else if (baseSet.Count < o.ValidationRows) baseSet.Add(vectors.Row(i));
        }
        var q = queries.ToArray();
        var truth = GroundTruth.Compute(baseSet, q, metric, o.K);

        var results = new List<PrefixCandidate>();
        foreach (int d in candidates)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var spec = template with { PqDim = d, Rerank = [] };
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var index = IvfIndex.Build(baseSet, spec, metric, o.Build);
            sw.Stop();
            var found = index.SearchBatch(q, o.K, new SearchParams { Rerank = [] }, 0, out _);
            double recall = RetrievalMetrics.RecallAtK(found.Ids, o.K, truth, o.K, o.K);
            results.Add(new PrefixCandidate(d, recall, sw.Elapsed));
        }
        // Best recall; ties go to the shorter prefix (cheaper tables, fewer dims to keep).
        var best = results.OrderByDescending(c => c.Recall).ThenBy(c => c.Dim).First();
        return new PrefixSelection(results, best, template with { PqDim = best.Dim == D ? null : best.Dim });
    }

    /// <summary>m, 2m, 4m, … below D, and D itself when m divides it.</summary>
    public static IEnumerable<int> DefaultDims(int m, int dimension)
    {
        for (int d = m; d < dimension; d *= 2) yield return d;
        if (dimension % m == 0) yield return dimension;
    }
}
