using Adanns.Engine;
using Adanns.Engine.Clustering;
using Adanns.Engine.Data;
using Adanns.Engine.Indexes;
using Adanns.Kernels.Gpu;

namespace Adanns.Gpu.Tests;

/// <summary>Flat search, k-means and IVF batch search on the GPU path give the CPU path's results (few hundred rows).</summary>
public class EngineOnGpuTests
{
    private static SyntheticDataset Data(int n, int d, int nq) =>
        SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(Count: n, Dimension: d, Clusters: 12, Queries: nq, Seed: 5));

    /// <summary>Scores as keys (smaller is better) so one tie-aware comparison serves every metric.</summary>
    private static void AssertSameResults(Metric metric, SearchResults cpu, SearchResults gpu, float tol, string where)
    {
        int k = cpu.K;
        for (int i = 0; i < cpu.QueryCount; i++)
        {
            var a = cpu.ScoresOf(i).ToArray();
            var b = gpu.ScoresOf(i).ToArray();
            if (metric.HigherIsBetter())
                for (int j = 0; j < k; j++) { a[j] = -a[j]; b[j] = -b[j]; }
            TestDevice.AssertSameTopK(a, cpu.IdsOf(i), b, gpu.IdsOf(i), tol, $"{where} query {i}");
        }
    }

    [Theory]
    [InlineData(Metric.L2, 0)]
    [InlineData(Metric.InnerProduct, 13)]
    [InlineData(Metric.Cosine, 13)]
    public void FlatSearchOnTheDeviceEqualsTheCpu(Metric metric, int dim)
    {
        using var data = Data(300, 32, 24);
        var q = data.Queries.ToArray();
        var cpu = new FlatIndex(data.Base, metric).SearchBatch(q, 32, 10, dim, threads: 1);
        var index = new FlatIndex(data.Base, metric) { Device = TestDevice.Kind };
        var gpu = index.SearchBatch(q, 32, 10, dim);
        AssertSameResults(metric, cpu, gpu, 1e-5f, $"{metric}@{dim}");

        // Single-query search takes the same device path.
        var ids = new long[10];
        var scores = new float[10];
        index.Search(data.Queries.Row(3), 10, ids, scores, dim);
        Assert.Equal(gpu.IdsOf(3).ToArray(), ids);
    }

    [Fact]
    public void FlatSearchPadsWhenKExceedsTheRows()
    {
        using var set = VectorSet.FromRows(TestDevice.Gaussian(5, 8, 1), 8);
        var index = new FlatIndex(set, Metric.L2) { Device = TestDevice.Kind };
        var r = index.SearchBatch(TestDevice.Gaussian(2, 8, 2), 8, 7);
        var cpu = new FlatIndex(set, Metric.L2).SearchBatch(TestDevice.Gaussian(2, 8, 2), 8, 7, threads: 1);
        Assert.Equal(cpu.Ids, r.Ids);
        Assert.Equal(-1, r.Ids[6]);
        Assert.Equal(float.PositiveInfinity, r.Scores[6]);
    }

    [NoCudaFact]
    public void AutoWithoutCudaIsTheSimdPath()
    {
        using var data = Data(200, 16, 5);
        var q = data.Queries.ToArray();
        var cpu = new FlatIndex(data.Base, Metric.L2).SearchBatch(q, 16, 5, threads: 1);
        var auto = new FlatIndex(data.Base, Metric.L2) { Device = ComputeDevice.Auto }.SearchBatch(q, 16, 5, threads: 1);
        Assert.Equal(cpu.Ids, auto.Ids);
        Assert.Equal(cpu.Scores, auto.Scores); // bit-identical: the same kernels ran
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KMeansOnTheDeviceEqualsTheCpu(bool spherical)
    {
        using var data = Data(400, 16, 0);
        var o = new KMeansOptions(MaxIterations: 6, Seed: 3, Threads: 1, Tolerance: 0);
        var cpu = KMeans.Train(data.Base, 12, 8, spherical, o);
        var gpu = KMeans.Train(data.Base, 12, 8, spherical, o with { Device = TestDevice.Kind });
        Assert.Equal(cpu.CostHistory.Count, gpu.CostHistory.Count);
        for (int i = 0; i < cpu.CostHistory.Count; i++)
            Assert.True(Math.Abs(cpu.CostHistory[i] - gpu.CostHistory[i]) <= 1e-5 * Math.Max(1e-3, cpu.CostHistory[i]),
                $"iteration {i}: cost {gpu.CostHistory[i]} vs {cpu.CostHistory[i]}");
        Assert.Equal(cpu.EmptyClusterRepairs, gpu.EmptyClusterRepairs);
        for (int i = 0; i < cpu.Centroids.Length; i++)
            Assert.True(Math.Abs(cpu.Centroids[i] - gpu.Centroids[i]) <= 1e-5f, $"centroid value {i}: {gpu.Centroids[i]} vs {cpu.Centroids[i]}");
    }

    [Fact]
    public void DeviceAssignmentAndUpdateEqualTheCpuSteps()
    {
        const int n = 300, dim = 12, k = 9;
        var dev = TestDevice.Device;
        var x = TestDevice.Gaussian(n, dim, 21);
        var centroids = TestDevice.Gaussian(k, dim, 22);
        var cpuAssign = new int[n];
        KMeans.Assign(x, n, dim, centroids, k, spherical: false, threads: 1, cpuAssign);
        using var points = GpuBuffer<float>.Upload(dev, x);
        var gpuAssign = new int[n];
        var keys = new float[n];
        GpuKMeans.Assign(dev, points, n, dim, centroids, k, false, gpuAssign, keys);
        for (int i = 0; i < n; i++)
        {
            if (cpuAssign[i] == gpuAssign[i]) continue;
            // A different winner is only allowed on a float-level tie.
            float Key(int c)
            {
                float dot = Adanns.Kernels.VectorMath.Dot(x.AsSpan(i * dim, dim), centroids.AsSpan(c * dim, dim));
                return Adanns.Kernels.VectorMath.NormSquared(centroids.AsSpan(c * dim, dim)) - 2 * dot;
            }
            Assert.True(Math.Abs(Key(cpuAssign[i]) - Key(gpuAssign[i])) <= 1e-4f, $"point {i}: {gpuAssign[i]} vs {cpuAssign[i]}");
        }

        // Update: double sums in point order, exactly as the CPU does them (bit-identical means).
        var updated = (float[])centroids.Clone();
        var counts = new int[k];
        GpuKMeans.Update(dev, points, n, dim, cpuAssign, k, updated, counts);
        for (int c = 0; c < k; c++)
        {
            var sum = new double[dim];
            int m = 0;
            for (int i = 0; i < n; i++)
            {
                if (cpuAssign[i] != c) continue;
                m++;
                for (int j = 0; j < dim; j++) sum[j] += x[i * dim + j];
            }
            Assert.Equal(m, counts[c]);
            for (int j = 0; j < dim; j++)
                Assert.Equal(m == 0 ? centroids[c * dim + j] : (float)(sum[j] / m), updated[c * dim + j]);
        }
    }

    [Theory]
    [InlineData("IVF8", Metric.L2)]
    [InlineData("IVF8@16,Scan24,SQ8,Rerank32", Metric.InnerProduct)]
    [InlineData("IVF8@16,Scan16,Shortlist40", Metric.Cosine)]
    [InlineData("IVF8@8,Scan16,SQ8", Metric.L2)]
    [InlineData("Rot,IVF8@16,Scan16,SQ8,Rerank32", Metric.Cosine)] // rotated: queries rotated one by one, as on the CPU
    [InlineData("IVF8@16,Scan16,SQ8,Prefix8@24,Shortlist40,Rerank24/20,Rerank32", Metric.InnerProduct)] // a codec-pipeline spec
    public void IvfBatchSearchOnTheDeviceEqualsTheCpu(string spec, Metric metric)
    {
        using var data = Data(400, 32, 20);
        var index = BuildIvf(data.Base, spec, metric, new IvfBuildOptions(new KMeansOptions(MaxIterations: 6, Seed: 7), Threads: 1));
        // Tombstones must never be reported, on either path.
        for (long id = 0; id < 400; id += 37) index.Remove(id);
        var q = data.Queries.ToArray();
        var p = new SearchParams { NProbe = 3 };
        var cpu = index.SearchBatch(q, 10, p, 1, out var cpuStats);
        index.Device = TestDevice.Kind;
        Assert.NotEqual("cpu", index.BatchRunsOnDevice(p)); // the device path, not a CPU fallback
        var gpu = index.SearchBatch(q, 10, p, 1, out var gpuStats);
        AssertSameResults(metric, cpu, gpu, spec.Contains("SQ8") && !spec.Contains("Rerank") ? 1e-4f : 1e-5f, spec);
        Assert.Equal(cpuStats.VectorsScanned, gpuStats.VectorsScanned);
        Assert.Equal(cpuStats.Flops, gpuStats.Flops);
        Assert.Equal(cpuStats.ListsProbed, gpuStats.ListsProbed);
        Assert.DoesNotContain(gpu.Ids, id => id >= 0 && id % 37 == 0);

        // A write invalidates the device copy: a re-added vector is found again.
        index.Add(data.Base.Row(0), 0);
        var again = index.SearchBatch(data.Base.Row(0).ToArray(), 1, new SearchParams { NProbe = 8 }, 1, out _);
        Assert.Equal(0, again.Ids[0]);
    }

    [Fact]
    public void OneBuildOptionPutsTrainingAndSearchOnTheDevice()
    {
        using var data = Data(300, 16, 8);
        var o = new IvfBuildOptions(new KMeansOptions(MaxIterations: 4, Seed: 7), Threads: 1);
        var cpu = BuildIvf(data.Base, "IVF6", Metric.L2, o);
        var dev = BuildIvf(data.Base, "IVF6", Metric.L2, o with { Device = TestDevice.Kind });
        Assert.Equal(ComputeDevice.Cpu, cpu.Device);
        Assert.Equal(TestDevice.Kind, dev.Device);
        // Probing every list makes the result independent of how near-ties split the clusters.
        var p = new SearchParams { NProbe = 6 };
        var q = data.Queries.ToArray();
        AssertSameResults(Metric.L2, cpu.SearchBatch(q, 5, p, 1, out _), dev.SearchBatch(q, 5, p, 1, out _), 1e-5f, "IVF6");
    }

    [Fact]
    public void WhatTheDeviceCannotServeRunsOnTheCpu()
    {
        // k above the device top-k's limit (flat), and exact IVF search: both take the CPU path, bit-identical.
        using var data = Data(320, 16, 3);
        var q = data.Queries.ToArray();
        int k = GpuDevice.MaxK + 10;
        var cpuFlat = new FlatIndex(data.Base, Metric.L2).SearchBatch(q, 16, k, threads: 1);
        var devFlat = new FlatIndex(data.Base, Metric.L2) { Device = TestDevice.Kind }.SearchBatch(q, 16, k, threads: 1);
        Assert.Equal(cpuFlat.Ids, devFlat.Ids);
        Assert.Equal(cpuFlat.Scores, devFlat.Scores);

        var index = BuildIvf(data.Base, "IVF4", Metric.L2, new IvfBuildOptions(new KMeansOptions(MaxIterations: 3, Seed: 1), Threads: 1));
        var exact = new SearchParams { Exact = true };
        var cpu = index.SearchBatch(q, 5, exact, 1, out _);
        index.Device = TestDevice.Kind;
        var dev = index.SearchBatch(q, 5, exact, 1, out _);
        Assert.Equal(cpu.Ids, dev.Ids);
        Assert.Equal(cpu.Scores, dev.Scores);
        Assert.Equal("cpu", index.BatchRunsOnDevice(exact));
        Assert.NotEqual("cpu", index.BatchRunsOnDevice());

        // Codecs and pipelines the device copy does not serve (here SQ8 with Spill, SQ8 with Rot and Prefix8, and PQ codes)
        // run on the CPU, explicitly.
        foreach (string spec in new[] { "IVF4,SQ8,Spill", "Rot,IVF4@8,Scan8,SQ8,Prefix8@8,Shortlist40,Rerank8/20,Rerank16", "IVF4,PQ4" })
        {
            using var other = VectorIndex.Build(data.Base, spec, Metric.L2, new VectorIndexBuildOptions(Pq: new PqBuildOptions(new KMeansOptions(MaxIterations: 3, Seed: 1), TrainingSample: 320, Threads: 1)));
            var pipeline = (IvfIndex)other;
            var onCpu = pipeline.SearchBatch(q, 5, null, 1, out _);
            pipeline.Device = TestDevice.Kind;
            Assert.Equal("cpu", pipeline.BatchRunsOnDevice());
            var asked = pipeline.SearchBatch(q, 5, null, 1, out _);
            Assert.Equal(onCpu.Ids, asked.Ids);
            Assert.Equal(onCpu.Scores, asked.Scores);
        }
    }

    /// <summary>A plain IVF spec built through the one pipeline with IVF build options.</summary>
    private static IvfIndex BuildIvf(VectorSet b, string spec, Metric metric, IvfBuildOptions o) =>
        (IvfIndex)VectorIndex.Build(b, spec, metric, new VectorIndexBuildOptions(Ivf: o));
}
