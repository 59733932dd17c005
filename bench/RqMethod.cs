using Adanns.Engine.Indexes;
using Adanns.Engine.Quantization;

namespace Adanns.Bench;

/// <summary>
/// <c>ivf-rq</c>: IVF at d_c plus RaBitQ codes (<c>RQ{b}@{d}</c>) for each <c>--rq-bits</c> × <c>--rq-dims</c>. With
/// d = D the rerank is one bound-driven stage at D; with d &lt; D a bound-driven stage at d keeps <c>--rq-keep</c> and a
/// last stage reranks those at D. <c>--rq-modes</c> sweeps the bound-driven stage (<c>bound</c>), the same stage over the
/// whole fixed shortlist (<c>fixed</c>) and no rerank at all (<c>none</c>: the codes' estimates ranked). Rows carry the
/// code bytes and the vectors reranked per query.
/// </summary>
internal static class RqMethod
{
    public static IEnumerable<OperatingPoint> Run(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        int D = data.Base.Dimension, k = o.K;
        int nlist = o.NList ?? IvfMethods.DefaultNList(data.Base.Count);
        int dc = o.CoarseDim ?? D;
        if (o.IndexRotation && o.Rotate) throw new ArgumentException("--index-rot and --rotate do not combine: the vectors would be rotated twice.");
        foreach (string rotation in o.RqRotations)
        foreach (int bits in o.RqBits)
        foreach (int d in o.RqDims ?? [D])
        {
            if (d > D) throw new ArgumentException($"--rq-dims: {d} is above D = {D}.");
            string stages = d == D ? $"Rerank{D}" : $"Rerank{d}/{o.RqKeep[0]},Rerank{D}";
            var spec = IndexSpec.Parse($"{(o.IndexRotation ? "Rot," : "")}IVF{nlist}@{dc},RQ{bits}@{d}{(o.Spill ? ",Spill" : "")},{stages}");
            var (index, build) = PqMethods.Build(data, spec, o, rotation == "dense" ? RaBitQRotation.Dense : RaBitQRotation.Hadamard);
            using var owned = index;
            if (o.RqEpsilon is { } eps) index.RaBitQ!.Epsilon0 = eps;
            foreach (string mode in o.RqModes)
            {
                index.BoundDrivenRerank = mode == "bound";
                int[] shortlists = mode == "none" ? [k] : o.Shortlists ?? [100, 200, 400];
                foreach (int keep in d == D ? [0] : o.RqKeep)
                foreach (int sl in shortlists.Where(x => x >= k).Distinct().Order())
                {
                    var plateau = new Plateau();
                    foreach (int np in IvfMethods.NProbes(nlist, o))
                    {
                        IReadOnlyList<RerankStage>? rerank = mode == "none" ? [] : d == D ? null : [new RerankStage(d, keep), new RerankStage(D, null)];
                        var p = new SearchParams { NProbe = np, Shortlist = sl, Rerank = rerank };
                        var parameters = new Dictionary<string, object>
                        {
                            ["nlist"] = nlist, ["dc"] = dc, ["bits"] = bits, ["d"] = d, ["bytes"] = index.CodeBytes, ["spill"] = spec.Spill,
                            ["rot"] = spec.Rotate ? "index" : o.Rotate ? "harness" : "none", ["mode"] = mode, ["eps"] = index.RaBitQ!.Epsilon0,
                            ["rq_rotation"] = rotation,
                            ["shortlist"] = sl, ["nprobe"] = np, ["stages"] = mode == "none" ? "" : d == D ? stages : $"Rerank{d}/{keep},Rerank{D}",
                        };
                        var point = PqMethods.Measure(data, truth, o, o.Label ?? "ivf-rq", index, p, build, parameters);
                        yield return point;
                        if (point.RecallAtK >= o.StopRecall || plateau.Reached(point.RecallAtK)) break;
                    }
                }
            }
        }
    }
}
