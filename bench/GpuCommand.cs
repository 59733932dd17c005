using System.Diagnostics;
using System.Globalization;
using System.Text;
using Adanns.Engine;
using Adanns.Engine.Clustering;
using Adanns.Engine.Data;
using Adanns.Engine.Indexes;
using Adanns.Kernels.Gpu;

namespace Adanns.Bench;

/// <summary>
/// <c>gpu</c>: the device check. On the chosen device, times exact (flat) search, k-means training and IVF batch
/// search against the SIMD CPU path on a synthetic Matryoshka set, checks the device results agree with the CPU's,
/// and prints one table (also written as Markdown to --out).
/// </summary>
internal static class GpuCommand
{
    public const string Help = """
        Usage: dotnet run -c Release --project bench -- gpu [--device cuda|auto|ilgpu-cpu] [--n 1000000] [--dim 256]
                   [--nq 1024] [--k 10] [--cpu-queries 64] [--kmeans-k 1024] [--kmeans-iters 10] [--nlist 1024]
                   [--nprobe 16] [--ivf-queries 10000] [--metric ip] [--bandwidth-gbs 4800] [--seed 42] [--out FILE]
        Measures on the device: flat search (1-query latency as effective GB/s of the base scanned, batch QPS),
        k-means time vs the CPU, IVF batch QPS vs the CPU; each with the agreement of ids with the CPU path.
        --device ilgpu-cpu runs the same kernels on ILGPU's CPU simulator (tiny sizes only: it is slow).
        """;

    private sealed record Row(string Stage, string Measure, string Cpu, string Device, string Note);

    public static int Run(string[] args)
    {
        var device = ComputeDevice.Cuda;
        int n = 1_000_000, dim = 256, nq = 1024, k = 10, cpuQueries = 64, kmK = 1024, kmIters = 10, nlist = 1024, nprobe = 16, ivfQueries = 10_000, seed = 42;
        double bandwidth = 4800;
        var metric = Metric.InnerProduct;
        string? outFile = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0
                ? v : throw new ArgumentException($"Option {args[i - 1]} needs a positive integer.");
            switch (args[i])
            {
                case "--device": device = ComputeDeviceNames.Parse(Value()); break;
                case "--n": n = Int(); break;
                case "--dim": dim = Int(); break;
                case "--nq": nq = Int(); break;
                case "--k": k = Int(); break;
                case "--cpu-queries": cpuQueries = Int(); break;
                case "--kmeans-k": kmK = Int(); break;
                case "--kmeans-iters": kmIters = Int(); break;
                case "--nlist": nlist = Int(); break;
                case "--nprobe": nprobe = Int(); break;
                case "--ivf-queries": ivfQueries = Int(); break;
                case "--seed": seed = Int(); break;
                case "--metric": metric = MetricExtensions.Parse(Value()); break;
                case "--bandwidth-gbs":
                    bandwidth = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double b) && b > 0
                        ? b : throw new ArgumentException("--bandwidth-gbs needs a positive number.");
                    break;
                case "--out": outFile = Value(); break;
                case "--help" or "-h": Console.WriteLine(Help); return 0;
                default: throw new ArgumentException($"Unknown option '{args[i]}' for gpu.\n{Help}");
            }
        }
        if (device == ComputeDevice.Cpu) throw new ArgumentException("gpu needs a device: cuda, auto or ilgpu-cpu.");
        var gpu = GpuDevice.Get(device);
        if (gpu is null)
        {
            Console.Error.WriteLine($"error: device '{device.ToShortName()}' resolved to the CPU (no CUDA device in this process).");
            return 3;
        }
        cpuQueries = Math.Min(cpuQueries, nq);
        nlist = Math.Min(nlist, n);
        nprobe = Math.Min(nprobe, nlist);
        kmK = Math.Min(kmK, n);
        Console.WriteLine($"device: {gpu}; CPU: {Environment.ProcessorCount} cores; data {n:N0} × {dim}, metric {metric.ToShortName()}");
        var rows = new List<Row>();
        var sw = Stopwatch.StartNew();
        int queryCount = Math.Max(nq, ivfQueries);
        using var data = SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(n, dim, Math.Max(16, nlist), queryCount, seed));
        Console.WriteLine($"generated in {sw.Elapsed.TotalSeconds:F1} s");
        var allQueries = data.Queries.ToArray();

        // 1. Flat search.
        {
            var cpuIndex = new FlatIndex(data.Base, metric);
            var gpuIndex = new FlatIndex(data.Base, metric) { Device = device };
            var cpuQ = allQueries.AsSpan(0, cpuQueries * dim);
            sw.Restart();
            gpuIndex.SearchBatch(allQueries.AsSpan(0, dim), dim, k); // rows to the device, kernels compiled
            double upload = sw.Elapsed.TotalSeconds;
            sw.Restart();
            var cpuRes = cpuIndex.SearchBatch(cpuQ, dim, k);
            double cpuT = sw.Elapsed.TotalSeconds;
            var one = new double[5];
            for (int r = 0; r < one.Length; r++)
            {
                sw.Restart();
                gpuIndex.SearchBatch(allQueries.AsSpan(r * dim, dim), dim, k);
                one[r] = sw.Elapsed.TotalSeconds;
            }
            Array.Sort(one);
            double bytes = (double)n * dim * sizeof(float);
            sw.Restart();
            var gpuRes = gpuIndex.SearchBatch(allQueries.AsSpan(0, nq * dim), dim, k);
            double gpuT = sw.Elapsed.TotalSeconds;
            var (same, maxDiff) = Agreement(cpuRes, gpuRes, cpuQueries, k);
            rows.Add(new("flat", "upload + compile (s)", "-", F(upload), $"{bytes / 1e9:G3} GB of rows"));
            rows.Add(new("flat", "1 query, median ms", F(cpuT / cpuQueries * 1e3), F(one[2] * 1e3), $"effective {bytes / one[2] / 1e9:G3} GB/s = {100 * bytes / one[2] / 1e9 / bandwidth:G3}% of {bandwidth:F0} GB/s"));
            rows.Add(new("flat", $"batch QPS (nq {nq}, k {k})", F(cpuQueries / cpuT), F(nq / gpuT),
                $"{2.0 * n * dim * nq / gpuT / 1e12:G3} TFLOP/s; base scanned at {bytes * nq / gpuT / 1e9:G3} GB/s logical"));
            rows.Add(new("flat", "ids equal to CPU", "-", $"{same:P2}", $"max |score diff| {maxDiff:G3} over {cpuQueries} queries"));
            gpuIndex.ReleaseDeviceMemory();
            Flush(rows);
        }

        // 2. k-means (Lloyd iterations on 256 points per centroid, fixed iteration count).
        {
            var o = new KMeansOptions(MaxIterations: kmIters, Tolerance: 0, Seed: seed);
            sw.Restart();
            var cpu = KMeans.Train(data.Base, dim, kmK, metric == Metric.Cosine, o);
            double cpuT = sw.Elapsed.TotalSeconds;
            sw.Restart();
            var dev = KMeans.Train(data.Base, dim, kmK, metric == Metric.Cosine, o with { Device = device });
            double gpuT = sw.Elapsed.TotalSeconds;
            double maxDiff = 0;
            for (int i = 0; i < cpu.Centroids.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(cpu.Centroids[i] - dev.Centroids[i]));
            rows.Add(new("k-means", $"train s (k {kmK}, {cpu.SampleSize:N0} pts, {kmIters} it)", F(cpuT), F(gpuT),
                $"speed-up {cpuT / gpuT:F1}x; final cost {cpu.CostHistory[^1]:G5} vs {dev.CostHistory[^1]:G5}; max |centroid diff| {maxDiff:G3}"));
            Flush(rows);
        }

        // 3. IVF batch search (scan on the device, ranking and output on the CPU).
        {
            sw.Restart();
            var index = IvfIndex.Build(data.Base, $"IVF{nlist}", metric,
                new IvfBuildOptions(new KMeansOptions(MaxIterations: kmIters, Seed: seed, Device: device)).ToPipelineOptions());
            double build = sw.Elapsed.TotalSeconds;
            var p = new SearchParams { NProbe = nprobe };
            var q = allQueries.AsSpan(0, ivfQueries * dim);
            sw.Restart();
            var cpuRes = index.SearchBatch(q, k, p, null, 0, out var stats);
            double cpuT = sw.Elapsed.TotalSeconds;
            index.Device = device;
            index.SearchBatch(allQueries.AsSpan(0, Math.Min(ivfQueries, 16) * dim), k, p, null, 0, out _); // lists to the device
            sw.Restart();
            var gpuRes = index.SearchBatch(q, k, p, null, 0, out _);
            double gpuT = sw.Elapsed.TotalSeconds;
            var (same, maxDiff) = Agreement(cpuRes, gpuRes, ivfQueries, k);
            rows.Add(new("ivf", $"build s (IVF{nlist}, k-means on device)", "-", F(build), $"{index.Count:N0} vectors"));
            rows.Add(new("ivf", $"batch QPS (nq {ivfQueries}, nprobe {nprobe})", F(ivfQueries / cpuT), F(ivfQueries / gpuT),
                $"speed-up {cpuT / gpuT:F1}x; {stats.VectorsScanned / (double)ivfQueries:N0} vectors scanned per query"));
            rows.Add(new("ivf", "ids equal to CPU", "-", $"{same:P2}", $"max |score diff| {maxDiff:G3}"));
            index.ReleaseDeviceMemory();
        }

        string table = Table(rows, gpu, n, dim, metric);
        Console.WriteLine();
        Console.WriteLine(table);
        if (outFile is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outFile))!);
            File.WriteAllText(outFile, table);
            Console.WriteLine($"written to {outFile}");
        }
        return 0;

        void Flush(List<Row> r) => Console.WriteLine($"  {r[^1].Stage}: {r[^1].Measure}: cpu {r[^1].Cpu}, device {r[^1].Device} ({r[^1].Note})");
    }

    /// <summary>Fraction of ids equal at equal rank over the first <paramref name="queries"/> queries, and the largest score difference.</summary>
    private static (double Same, double MaxDiff) Agreement(SearchResults cpu, SearchResults dev, int queries, int k)
    {
        long same = 0;
        double maxDiff = 0;
        for (int i = 0; i < queries * k; i++)
        {
            if (cpu.Ids[i] == dev.Ids[i]) same++;
            if (cpu.Ids[i] >= 0 && dev.Ids[i] >= 0) maxDiff = Math.Max(maxDiff, Math.Abs(cpu.Scores[i] - dev.Scores[i]));
        }
        return ((double)same / (queries * k), maxDiff);
    }

    private static string F(double v) => v.ToString(v >= 100 ? "N0" : "G4", CultureInfo.InvariantCulture);

    private static string Table(List<Row> rows, GpuDevice gpu, int n, int dim, Metric metric)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"## GPU check: {gpu} vs SIMD CPU ({Environment.ProcessorCount} cores)");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Data: synthetic Matryoshka {n:N0} × {dim}, metric {metric.ToShortName()}. Date {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.");
        sb.AppendLine();
        sb.AppendLine("| stage | measure | CPU (SIMD) | device | note |");
        sb.AppendLine("|---|---|---:|---:|---|");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Stage} | {r.Measure} | {r.Cpu} | {r.Device} | {r.Note} |");
        return sb.ToString();
    }
}
