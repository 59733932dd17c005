using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Adanns.Bench;

/// <summary>One measured operating point; the JSONL field names are a stable contract for other tools.</summary>
internal sealed record OperatingPoint(
    string Dataset, string Method, IReadOnlyDictionary<string, object> Params, int K,
    double RecallAt1, double RecallAtK, double? OneNnAccuracy, double? FlopsPerQuery,
    double Qps, double? QpsSingle, double? P50Us, double? P99Us, double BuildSeconds, double BytesPerVector,
    int Threads, int N, int Dim, int Nq)
{
    public JsonObject ToJson()
    {
        var p = new JsonObject();
        foreach (var (key, value) in Params)
            p[key] = value switch
            {
                int i => JsonValue.Create(i),
                long l => JsonValue.Create(l),
                double d => JsonValue.Create(d),
                float f => JsonValue.Create(f),
                bool b => JsonValue.Create(b),
                _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
            };
        return new JsonObject
        {
            ["dataset"] = Dataset,
            ["method"] = Method,
            ["params"] = p,
            ["k"] = K,
            ["recall_at_1"] = RecallAt1,
            ["recall_at_k"] = RecallAtK,
            ["one_nn_accuracy"] = OneNnAccuracy,
            ["flops_per_query"] = FlopsPerQuery,
            ["qps"] = Qps,
            ["qps_single"] = QpsSingle,
            ["p50_us"] = P50Us,
            ["p99_us"] = P99Us,
            ["build_seconds"] = BuildSeconds,
            ["bytes_per_vector"] = BytesPerVector,
            ["threads"] = Threads,
            ["n"] = N,
            ["dim"] = Dim,
            ["nq"] = Nq,
            ["machine"] = Environment.MachineName,
            ["cpu_count"] = Environment.ProcessorCount,
            ["simd"] = Adanns.Kernels.SimdInfo.Describe(),
        };
    }
}

/// <summary>Prints operating points as a table and appends them to a JSONL file.</summary>
internal static class Report
{
    public static void PrintHeader(int k)
    {
        Console.WriteLine($"{"method",-10} {"params",-18} {"recall@1",8} {"recall@" + k,9} {"1nn-acc",7} {"MFLOP/q",9} {"QPS(batch)",10} {"QPS(1)",8} {"p50 us",8} {"p99 us",8} {"build s",7}");
    }

    public static void Print(OperatingPoint p)
    {
        string ps = string.Join(" ", p.Params.Select(kv => $"{kv.Key}={kv.Value}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{p.Method,-10} {ps,-18} {p.RecallAt1,8:F4} {p.RecallAtK,9:F4} {Fmt(p.OneNnAccuracy, "F3"),7} {Fmt(p.FlopsPerQuery / 1e6, "F2"),9} {p.Qps,10:F0} {Fmt(p.QpsSingle, "F0"),8} {Fmt(p.P50Us, "F0"),8} {Fmt(p.P99Us, "F0"),8} {p.BuildSeconds,7:F2}"));
    }

    /// <summary>
    /// Per method: the best batch QPS (and its FLOPs/query) among points reaching each recall target, plus the
    /// FLOPs saving over exact search at full D.
    /// </summary>
    public static void PrintSummary(IReadOnlyList<OperatingPoint> points)
    {
        if (points.Count == 0) return;
        double[] targets = [0.80, 0.90, 0.95, 0.99];
        var first = points[0];
        double flatFlops = (double)first.N * first.Dim;
        Console.WriteLine();
        Console.WriteLine($"Summary: best QPS (FLOPs/query; × fewer FLOPs than exact search at D) reaching recall@{first.K}:");
        Console.WriteLine($"{"method",-12}" + string.Concat(targets.Select(t => $"{"≥ " + t.ToString("F2", CultureInfo.InvariantCulture),28}")));
        foreach (var group in points.GroupBy(p => p.Method))
        {
            var line = $"{group.Key,-12}";
            foreach (double t in targets)
            {
                var best = group.Where(p => p.RecallAtK >= t).OrderByDescending(p => p.Qps).FirstOrDefault();
                line += best is null
                    ? $"{"-",28}"
                    : string.Create(CultureInfo.InvariantCulture, $"{best.Qps,9:F0} ({(best.FlopsPerQuery is { } f ? $"{f / 1e6:F2}M; {flatFlops / f:F0}x" : "n/a"),14})   ");
            }
            Console.WriteLine(line);
        }
    }

    private static string Fmt(double? v, string f) => v is null ? "-" : v.Value.ToString(f, CultureInfo.InvariantCulture);

    public static void Append(string path, IEnumerable<OperatingPoint> points)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        using var w = new StreamWriter(path, append: true);
        foreach (var p in points)
            w.WriteLine(p.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
    }
}
