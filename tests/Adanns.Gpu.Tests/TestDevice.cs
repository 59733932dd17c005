using Adanns.Kernels;
using Adanns.Kernels.Gpu;

namespace Adanns.Gpu.Tests;

/// <summary>
/// The device the GPU tests run on: ILGPU's CPU accelerator by default (CI has no GPU), or the device named by
/// ADANNS_GPU_TEST_DEVICE (e.g. "cuda" in bench/gpu-check.sh, where a missing GPU must fail the run).
/// </summary>
internal static class TestDevice
{
    public static ComputeDevice Kind { get; } =
        Environment.GetEnvironmentVariable("ADANNS_GPU_TEST_DEVICE") is { Length: > 0 } s ? ComputeDeviceNames.Parse(s) : ComputeDevice.IlgpuCpu;

    public static GpuDevice Device => GpuDevice.Get(Kind) ?? throw new InvalidOperationException($"Test device {Kind} resolved to the CPU path.");

    public static float[] Gaussian(int n, int d, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    /// <summary>
    /// Asserts two best-first result lists agree: equal keys within <paramref name="tol"/> (relative to the key
    /// scale) at every rank, and equal ids wherever the reference key is not tied (within tol) with a neighbour —
    /// a near-tie may legitimately swap under a different summation order.
    /// </summary>
    public static void AssertSameTopK(ReadOnlySpan<float> refKeys, ReadOnlySpan<long> refIds, ReadOnlySpan<float> keys, ReadOnlySpan<long> ids, float tol, string where)
    {
        Assert.Equal(refIds.Length, ids.Length);
        int k = refIds.Length;
        for (int j = 0; j < k; j++)
        {
            if (refIds[j] < 0 || ids[j] < 0)
            {
                Assert.True(refIds[j] == ids[j], $"{where}: rank {j}: padding differs ({refIds[j]} vs {ids[j]}).");
                continue;
            }
            float scale = Math.Max(1f, Math.Abs(refKeys[j]));
            Assert.True(Math.Abs(refKeys[j] - keys[j]) <= tol * scale, $"{where}: rank {j}: key {keys[j]} vs reference {refKeys[j]}.");
            bool tiedBefore = j > 0 && Math.Abs(refKeys[j] - refKeys[j - 1]) <= 2 * tol * scale;
            bool tiedAfter = j + 1 < k && refIds[j + 1] >= 0 && Math.Abs(refKeys[j + 1] - refKeys[j]) <= 2 * tol * scale;
            bool lastRankTie = j == k - 1; // the k-th place may be shared with an unlisted row
            if (!tiedBefore && !tiedAfter && !lastRankTie)
                Assert.True(refIds[j] == ids[j], $"{where}: rank {j}: id {ids[j]} vs reference {refIds[j]} (key {refKeys[j]}).");
        }
        // Whatever the order of near-ties, both must list the same set outside the last-rank boundary.
        var a = refIds[..(k - 1)].ToArray();
        var b = ids[..(k - 1)].ToArray();
        int differ = a.Except(b).Count();
        Assert.True(differ <= 1, $"{where}: {differ} ids of the reference top-{k} are missing.");
    }

    public static long[] Widen(ReadOnlySpan<int> ids)
    {
        var r = new long[ids.Length];
        for (int i = 0; i < ids.Length; i++) r[i] = ids[i];
        return r;
    }

    /// <summary>CPU reference top-k (TopKHeap, the kernels' own selection) of one key row.</summary>
    public static (float[] Keys, long[] Ids) CpuTopK(ReadOnlySpan<float> keys, int k)
    {
        var hk = new float[k];
        var hi = new int[k];
        var heap = new TopKHeap(hk, hi);
        TopK.PushAll(ref heap, keys, 0);
        int found = heap.SortBestFirst();
        var outK = new float[k];
        var outI = new long[k];
        for (int j = 0; j < k; j++)
        {
            outK[j] = j < found ? hk[j] : float.PositiveInfinity;
            outI[j] = j < found ? hi[j] : -1;
        }
        return (outK, outI);
    }
}

/// <summary>A fact about machines without CUDA: reported as skipped (not passed) where a CUDA device is present.</summary>
public sealed class NoCudaFactAttribute : FactAttribute
{
    public NoCudaFactAttribute()
    {
        if (GpuDevice.CudaAvailable) Skip = "A CUDA device is present; this checks the behaviour without one.";
    }
}
