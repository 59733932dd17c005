using ILGPU;

namespace Adanns.Kernels.Gpu;

/// <summary>
/// k-means steps on a GPU over points kept in device memory for the whole run: assignment (the tiled distance
/// kernel against the centroids + device top-1) and the centroid update (per-cluster means summed in double, in
/// ascending point order — the CPU's order, so equal assignments give bit-identical centroids).
/// </summary>
public static class GpuKMeans
{
    /// <summary>
    /// Nearest centroid of every point (n×dim row-major in <paramref name="points"/>) among k×dim
    /// <paramref name="centroids"/>; ties go to the lower centroid. <paramref name="bestKeys"/> receives the key of the
    /// winner: ‖c‖² − 2x·c (Euclidean; add ‖x‖² for the squared distance) or −x·c (spherical).
    /// </summary>
    public static void Assign(GpuDevice device, GpuBuffer<float> points, int n, int dim, ReadOnlySpan<float> centroids, int k, bool spherical,
        Span<int> assignment, Span<float> bestKeys)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(points);
        Check(points, n, dim, centroids, k);
        if (assignment.Length < n || bestKeys.Length < n)
            throw new ArgumentException($"Assignment and key buffers must hold {n} entries.");
        if (n == 0) return;
        using var c = GpuBuffer<float>.Upload(device, centroids[..(k * dim)], "centroids");
        using var c2 = spherical ? null : GpuBuffer<float>.Upload(device, Norms2(centroids, k, dim), "centroid norms");
        GpuSearch.NearestCore(device, points.View.SubView(0, (long)n * dim), n, dim, c.View, dim, k,
            spherical ? KeyKind.InnerProduct : KeyKind.L2, GpuSearch.TermsView(c2), 1, bestKeys, assignment);
    }

    /// <summary>
    /// Update step: centroids[c] = mean of the points assigned to c (clusters with no point keep their centroid);
    /// <paramref name="counts"/> receives each cluster's size. Spherical normalisation is left to the caller.
    /// </summary>
    public static void Update(GpuDevice device, GpuBuffer<float> points, int n, int dim, ReadOnlySpan<int> assignment, int k,
        Span<float> centroids, Span<int> counts)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(points);
        Check(points, n, dim, centroids, k);
        if (assignment.Length < n || counts.Length < k) throw new ArgumentException("Assignment or count buffer too small.");
        // Counting sort on the host (O(n)): the points of each cluster, ascending, for the device to sum in order.
        var starts = new int[k + 1];
        for (int i = 0; i < n; i++)
        {
            int a = assignment[i];
            if ((uint)a >= (uint)k) throw new ArgumentException($"Assignment {a} of point {i} is outside [0, {k}).", nameof(assignment));
            starts[a + 1]++;
        }
        for (int c = 0; c < k; c++)
        {
            counts[c] = starts[c + 1];
            starts[c + 1] += starts[c];
        }
        var fill = starts[..k];
        var order = new int[Math.Max(1, n)];
        for (int i = 0; i < n; i++) order[fill[assignment[i]]++] = i;

        using var ob = GpuBuffer<int>.Upload(device, order, "point order");
        using var sb = GpuBuffer<int>.Upload(device, starts, "cluster starts");
        using var cb = GpuBuffer<float>.Upload(device, centroids[..(k * dim)], "centroids");
        device.Run("centroid update kernel", () => device.Kernels.CentroidUpdate(k * dim, points.View, ob.View, sb.View, cb.View, dim));
        cb.CopyTo(0, centroids[..(k * dim)]);
    }

    private static float[] Norms2(ReadOnlySpan<float> centroids, int k, int dim)
    {
        var c2 = new float[k];
        for (int c = 0; c < k; c++) c2[c] = VectorMath.NormSquared(centroids.Slice(c * dim, dim));
        return c2;
    }

    private static void Check(GpuBuffer<float> points, int n, int dim, ReadOnlySpan<float> centroids, int k)
    {
        if (n < 0 || dim <= 0 || k <= 0) throw new ArgumentOutOfRangeException(nameof(n), "n ≥ 0, dim > 0 and k > 0 are required.");
        if ((long)n * dim > points.Length) throw new ArgumentException($"{n} points of {dim} dims need {(long)n * dim} floats; the buffer holds {points.Length}.", nameof(points));
        if (centroids.Length < (long)k * dim) throw new ArgumentException($"{k} centroids of {dim} dims need {(long)k * dim} floats.", nameof(centroids));
        if ((long)k * dim > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(k), "k·dim must fit in an int.");
    }
}
