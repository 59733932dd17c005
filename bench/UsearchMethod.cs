using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using Adanns.Engine;
using Adanns.Engine.Evaluation;
using Cloud.Unum.USearch;

namespace Adanns.Bench;

/// <summary>
/// USearch (NuGet Cloud.Unum.USearch 2.26.6), the HNSW library a .NET user would pick, measured in process on
/// the same data, ground truth and timing protocol as our own methods. Build: connectivity 16, expansion_add 200;
/// sweep: expansion_search 16…512.
/// </summary>
internal static class UsearchMethod
{
    private const ulong Connectivity = 16;
    private const ulong ExpansionAdd = 200;
    private static readonly int[] ExpansionSearch = [16, 32, 64, 128, 256, 512];

    public static IEnumerable<OperatingPoint> Run(BenchData data, (int[] Ids, int Stride) truth, BenchOptions o)
    {
        int D = data.Base.Dimension, n = data.Base.Count, nq = data.QueryCount, k = o.K;
        var metric = data.Metric switch
        {
            Metric.L2 => MetricKind.L2sq,
            Metric.InnerProduct => MetricKind.Ip,
            Metric.Cosine => MetricKind.Cos,
            _ => throw new ArgumentException($"USearch: unsupported metric {data.Metric}."),
        };
        using var index = new USearchIndex(metric, ScalarKind.Float32, (ulong)D, Connectivity, ExpansionAdd, 64, false);
        IntPtr handle = UsearchNative.Handle(index);
        UsearchNative.usearch_reserve(handle, (nuint)n, out IntPtr err);
        UsearchNative.Check(err, "usearch_reserve");

        // Build: rows go straight from our native vector storage to usearch_add (no managed copies);
        // o.Threads threads add disjoint rows concurrently (USearch's add is thread-safe).
        var sw = Stopwatch.StartNew();
        int next = -1;
        void AddRows()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
                UsearchNative.Add(handle, (ulong)i, data.Base.Row(i));
        }
        RunOnThreads(Math.Max(1, o.Threads), _ => AddRows());
        double build = sw.Elapsed.TotalSeconds;
        if (index.Size() != (ulong)n)
            throw new InvalidOperationException($"USearch holds {index.Size()} vectors after adding {n}.");
        nuint memory = UsearchNative.usearch_memory_usage(handle, out err);
        UsearchNative.Check(err, "usearch_memory_usage");
        double bytesPerVector = (double)memory / n;

        var ids = new long[(long)nq * k];
        foreach (int ef in ExpansionSearch)
        {
            // The managed API (2.26.6) has no setter for expansion_search: call the exported native function.
            UsearchNative.usearch_change_expansion_search(handle, (nuint)Math.Max(ef, k), out err);
            UsearchNative.Check(err, "usearch_change_expansion_search");

            // "Batch": the .NET binding has no batch search, so this is a loop of single-query searches over all
            // queries (split across o.Threads threads), timed as a whole; best of the repeats, round −1 warms up.
            double best = double.MaxValue;
            for (int r = -1; r < o.Repeats; r++)
            {
                sw.Restart();
                int threads = Math.Max(1, Math.Min(o.Threads, nq));
                RunOnThreads(threads, t =>
                {
                    int lo = (int)((long)nq * t / threads), hi = (int)((long)nq * (t + 1) / threads);
                    for (int q = lo; q < hi; q++)
                        UsearchNative.Search(handle, data.Queries.AsSpan(q * D, D), ids.AsSpan(q * k, k));
                });
                if (r >= 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            var (recall1, recallK, acc) = Accuracy.Of(ids, data, truth, k);

            var (qpsSingle, p50, p99) = TimeSingle(handle, data, o);
            // FLOPs/query: USearch's C API exposes no count of distance evaluations per search, so the work per
            // query is unknown; the record carries null rather than a made-up number.
            var point = new OperatingPoint(
                data.Name, "usearch",
                new Dictionary<string, object> { ["ef"] = ef, ["M"] = (int)Connectivity, ["efc"] = (int)ExpansionAdd }, k,
                recall1, recallK, acc, null, nq / best, qpsSingle, p50, p99, build,
                bytesPerVector, o.Threads, n, D, nq);
            Report.Print(point);
            yield return point;
        }
    }

    /// <summary>One query per call on one thread, for latency (p50/p99 µs) and single-call QPS.</summary>
    private static (double? Qps, double? P50, double? P99) TimeSingle(IntPtr handle, BenchData data, BenchOptions o)
    {
        int D = data.Base.Dimension;
        return Latency.Measure(o, data.QueryCount, D, (i, ids, _) => UsearchNative.Search(handle, data.Queries.AsSpan(i * D, D), ids));
    }

    private static void RunOnThreads(int threads, Action<int> body)
    {
        if (threads <= 1)
        {
            body(0);
            return;
        }
        var ts = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            ts[t] = new Thread(() => body(id));
            ts[t].Start();
        }
        foreach (var th in ts) th.Join();
    }
}

/// <summary>Native entry points of libusearch_c (bundled with the NuGet package) that the 2.26.6 managed API does not wrap.</summary>
internal static unsafe partial class UsearchNative
{
    private const string Lib = "libusearch_c";

    [LibraryImport(Lib)] internal static partial void usearch_reserve(IntPtr index, nuint capacity, out IntPtr error);
    [LibraryImport(Lib)] internal static partial void usearch_change_expansion_search(IntPtr index, nuint expansion, out IntPtr error);
    [LibraryImport(Lib)] internal static partial nuint usearch_memory_usage(IntPtr index, out IntPtr error);
    [LibraryImport(Lib)] private static partial void usearch_add(IntPtr index, ulong key, float* vector, ScalarKind kind, out IntPtr error);
    [LibraryImport(Lib)] private static partial nuint usearch_search(IntPtr index, float* query, ScalarKind kind, nuint count, ulong* keys, float* distances, out IntPtr error);

    /// <summary>The native index pointer held privately by <see cref="USearchIndex"/>.</summary>
    internal static IntPtr Handle(USearchIndex index) =>
        typeof(USearchIndex).GetField("_index", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(index) as IntPtr?
        ?? throw new InvalidOperationException("USearchIndex._index not found: this code expects Cloud.Unum.USearch 2.26.6.");

    internal static void Check(IntPtr error, string what)
    {
        if (error != IntPtr.Zero)
            throw new InvalidOperationException($"{what}: {Marshal.PtrToStringAnsi(error)}");
    }

    internal static void Add(IntPtr index, ulong key, ReadOnlySpan<float> vector)
    {
        IntPtr err;
        fixed (float* v = vector)
            usearch_add(index, key, v, ScalarKind.Float32, out err);
        Check(err, "usearch_add");
    }

    /// <summary>Top-ids.Length keys of one query into <paramref name="ids"/>; slots with no result get −1.</summary>
    internal static void Search(IntPtr index, ReadOnlySpan<float> query, Span<long> ids)
    {
        int k = ids.Length;
        ulong* keys = stackalloc ulong[k];
        float* dist = stackalloc float[k];
        nuint found;
        IntPtr err;
        fixed (float* q = query)
            found = usearch_search(index, q, ScalarKind.Float32, (nuint)k, keys, dist, out err);
        Check(err, "usearch_search");
        for (int i = 0; i < k; i++)
            ids[i] = i < (int)found ? (long)keys[i] : -1;
    }
}
