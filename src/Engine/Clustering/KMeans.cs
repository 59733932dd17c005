using System.Numerics.Tensors;
using Adanns.Engine.Indexes;
using Adanns.Kernels;
using Adanns.Kernels.Gpu;

namespace Adanns.Engine.Clustering;

/// <summary>Options of <see cref="KMeans.Train"/>.</summary>
/// <param name="MaxIterations">Lloyd iterations at most.</param>
/// <param name="PointsPerCentroid">Training sample size per centroid (the rest of the data is not needed to place centroids).</param>
/// <param name="Tolerance">Stop when the cost improves by less than this fraction between iterations.</param>
/// <param name="Seed">Random seed: same data + same seed = same centroids.</param>
/// <param name="Threads">Threads for the assignment step (0 = all cores).</param>
/// <param name="Device">Where the Lloyd iterations run: the SIMD CPU kernels (default), or a GPU (<see cref="ComputeDevice.Auto"/>
/// falls back to the CPU when no CUDA device exists). Seeding and empty-cluster repair stay on the CPU.</param>
public sealed record KMeansOptions(int MaxIterations = 20, int PointsPerCentroid = 256, double Tolerance = 1e-4, int Seed = 1234, int Threads = 0,
    ComputeDevice Device = ComputeDevice.Cpu);

/// <summary>Progress of a k-means run, reported once per phase step.</summary>
/// <param name="Phase">"seeding" or "lloyd".</param>
/// <param name="Iteration">Lloyd iteration (0 while seeding).</param>
/// <param name="MaxIterations">Iteration limit.</param>
/// <param name="Cost">Current cost (mean squared distance, or mean 1 − cos for spherical k-means).</param>
public readonly record struct KMeansProgress(string Phase, int Iteration, int MaxIterations, double Cost);

/// <summary>The result of training: k centroids of dim d, row-major, and how it got there.</summary>
public sealed class KMeansResult
{
    internal KMeansResult(float[] centroids, int k, int dim, IReadOnlyList<double> costs, int emptyRepairs, int sampleSize)
    {
        Centroids = centroids;
        K = k;
        Dimension = dim;
        CostHistory = costs;
        EmptyClusterRepairs = emptyRepairs;
        SampleSize = sampleSize;
    }

    /// <summary>k×d centroids, row-major.</summary>
    public float[] Centroids { get; }

    /// <summary>Number of centroids.</summary>
    public int K { get; }

    /// <summary>Dimension of the centroids (the prefix dim trained on).</summary>
    public int Dimension { get; }

    /// <summary>Cost after each Lloyd assignment step (non-increasing up to float rounding).</summary>
    public IReadOnlyList<double> CostHistory { get; }

    /// <summary>How many times an empty cluster was re-seeded by splitting a large one.</summary>
    public int EmptyClusterRepairs { get; }

    /// <summary>Points actually trained on.</summary>
    public int SampleSize { get; }
}

/// <summary>
/// Seeded k-means on a Matryoshka prefix: k-means++ seeding on a subsample, then Lloyd iterations whose
/// assignment step is the blocked batch kernel of <see cref="FlatIndex"/> (multi-threaded).
/// </summary>
/// <remarks>
/// <para><b>Spherical</b> mode (for cosine): points are the L2-renormalised d-prefixes, centroids are kept at
/// unit length and the cost is mean (1 − cos). Otherwise plain Euclidean k-means on the raw prefixes.</para>
/// <para>Determinism: the sample, the seeding and empty-cluster repairs use one seeded generator; the update step
/// sums in a fixed order; assignment ties go to the lower centroid index. Same inputs and seed give the same
/// centroids whatever the thread count.</para>
/// </remarks>
public static class KMeans
{
    /// <summary>Trains k centroids on the first <paramref name="dim"/> dims of <paramref name="data"/>.</summary>
    public static KMeansResult Train(VectorSet data, int dim, int k, bool spherical, KMeansOptions? options = null,
        IProgress<KMeansProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        var o = options ?? new KMeansOptions();
        if (dim <= 0 || dim > data.Dimension)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Training dim must be in [1, {data.Dimension}].");
        if (k <= 0)
            throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        if (data.Count < k)
            throw new ArgumentException($"k-means with k={k} needs at least {k} points; got {data.Count}.", nameof(data));
        if (o.MaxIterations < 0 || o.PointsPerCentroid <= 0 || !(o.Tolerance >= 0))
            throw new ArgumentOutOfRangeException(nameof(options), "MaxIterations ≥ 0, PointsPerCentroid > 0 and Tolerance ≥ 0 are required.");

        var rng = new Random(o.Seed);
        int n = (int)Math.Min(data.Count, (long)k * o.PointsPerCentroid);
        var sampleRows = SampleIndices(data.Count, n, rng);
        var x = new float[(long)n * dim];
        for (int i = 0; i < n; i++)
        {
            var dst = x.AsSpan(i * dim, dim);
            data.Prefix(sampleRows[i], dim).CopyTo(dst);
            if (spherical) VectorMath.NormalizeInPlace(dst);
        }

        return Lloyd(x, n, dim, k, spherical, o, rng, null, progress, cancellationToken);
    }

    /// <summary>
    /// Trains k centroids on all <paramref name="n"/> rows of <paramref name="points"/> (n×dim, row-major, used as
    /// given: no sampling or normalisation). <paramref name="initialCentroids"/> (k×dim) warm-starts Lloyd instead of
    /// k-means++ seeding — OPQ retrains its sub-quantizers every iteration from the previous codebooks.
    /// </summary>
    public static KMeansResult TrainRows(float[] points, int n, int dim, int k, bool spherical, KMeansOptions? options = null,
        float[]? initialCentroids = null, IProgress<KMeansProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(points);
        var o = options ?? new KMeansOptions();
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "Training dim must be positive.");
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1.");
        if (n < k) throw new ArgumentException($"k-means with k={k} needs at least {k} points; got {n}.", nameof(n));
        if (points.Length < (long)n * dim) throw new ArgumentException($"{n} points of {dim} dims need {(long)n * dim} floats.", nameof(points));
        if (initialCentroids is not null && initialCentroids.Length != (long)k * dim)
            throw new ArgumentException($"Initial centroids must hold k×dim = {(long)k * dim} floats.", nameof(initialCentroids));
        return Lloyd(points, n, dim, k, spherical, o, new Random(o.Seed), (float[]?)initialCentroids?.Clone(), progress, cancellationToken);
    }

    private static KMeansResult Lloyd(float[] x, int n, int dim, int k, bool spherical, KMeansOptions o, Random rng, float[]? initial,
        IProgress<KMeansProgress>? progress, CancellationToken cancellationToken)
    {
        progress?.Report(new KMeansProgress("seeding", 0, o.MaxIterations, double.NaN));
        var centroids = initial ?? SeedPlusPlus(x, n, dim, k, rng, cancellationToken);
        var assign = new int[n];
        var costs = new List<double>();
        int repairs = 0;
        var counts = new int[k];
        var sums = new double[(long)k * dim];
        using var gpu = GpuLloyd.Create(o.Device, x, n, dim);

        for (int it = 1; it <= o.MaxIterations; it++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            double cost = gpu is null ? Assign(x, n, dim, centroids, k, spherical, o.Threads, assign) : gpu.Assign(centroids, k, spherical, assign);
            costs.Add(cost);
            progress?.Report(new KMeansProgress("lloyd", it, o.MaxIterations, cost));
            if (gpu is not null)
            {
                // The same sums in the same order as the CPU update, on the device.
                gpu.Update(assign, centroids, k, counts);
                if (spherical)
                    for (int c = 0; c < k; c++)
                        if (counts[c] > 0) VectorMath.NormalizeInPlace(centroids.AsSpan(c * dim, dim));
            }
            else
            {
                Update(x, n, dim, assign, centroids, k, spherical, counts, sums);
            }
            repairs += RepairEmpty(centroids, counts, k, dim, spherical, rng);

            bool converged = costs.Count >= 2 && costs[^2] - cost <= o.Tolerance * Math.Abs(costs[^2]);
            if (converged) break;
        }
        return new KMeansResult(centroids, k, dim, costs, repairs, n);
    }

    /// <summary>Points scored together against the centroid table (<see cref="InterleavedKernels.DotMulti"/> takes up to four).</summary>
    private const int PointGroup = 4;

    /// <summary>
    /// Assigns every point (n×dim row-major) to its nearest centroid (ties: lower index) and returns the mean cost
    /// (squared distance, or 1 − cos for spherical k-means with unit points and centroids).
    /// </summary>
    /// <remarks>
    /// The centroids are laid out once in the interleaved-16 layout, so each point is scored against 16 centroids
    /// per FMA with no horizontal sums; the table (k×dim floats) stays in L2 while points stream through.
    /// </remarks>
    /// <remarks>Arrays rather than spans: the points are shared with the worker threads without a copy.</remarks>
    public static double Assign(float[] points, int n, int dim, float[] centroids, int k, bool spherical, int threads, int[] assignment)
    {
        if (points.Length < (long)n * dim) throw new ArgumentException($"{n} points of {dim} dims need {(long)n * dim} floats.");
        if (assignment.Length < n) throw new ArgumentException($"Assignment buffer holds {assignment.Length} entries for {n} points.");
        int blocks = (k + InterleavedKernels.BlockRows - 1) / InterleavedKernels.BlockRows;
        var layout = TileLayout.GroupMajor(blocks);
        var table = new float[InterleavedKernels.Groups(dim) * layout.GroupStride];
        var c2 = new float[blocks * InterleavedKernels.BlockRows];
        for (int c = 0; c < k; c++)
        {
            var row = centroids.AsSpan(c * dim, dim);
            InterleavedKernels.WriteRow(table, layout, c, row);
            c2[c] = VectorMath.NormSquared(row);
        }
        if (threads <= 0) threads = Environment.ProcessorCount;
        threads = Math.Max(1, Math.Min(threads, n / 2048 + 1));
        var partial = new double[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int a = (int)((long)n * t / threads), b = (int)((long)n * (t + 1) / threads);
            int stride = blocks * InterleavedKernels.BlockRows;
            var dots = new float[PointGroup * stride];
            var keys = new float[k];
            double cost = 0;
            // Points four at a time: each centroid value loaded feeds four FMAs (one per point) instead of one, so
            // the pass is no longer bound by reading the table from L2. The dots equal one point's at a time exactly.
            for (int i = a; i < b; i += PointGroup)
            {
                int m = Math.Min(PointGroup, b - i);
                InterleavedKernels.DotMulti(points.AsSpan(i * dim, m * dim), dim, m, table, layout, blocks, dots, stride);
                for (int p = 0; p < m; p++)
                {
                    var pointDots = dots.AsSpan(p * stride, k);
                    // Spherical: max x·c. Euclidean: min ‖c‖² − 2x·c (‖x‖² is the same for every c). Vectorised: at
                    // small dims (PQ sub-spaces) this argmin, not the dot products, is most of the work. IndexOfMin
                    // returns the first minimum, so ties still go to the lower index.
                    if (spherical) TensorPrimitives.Negate(pointDots, keys);
                    else TensorPrimitives.MultiplyAdd(pointDots, -2f, c2.AsSpan(0, k), keys);
                    int best = TensorPrimitives.IndexOfMin(keys);
                    float bestKey = keys[best];
                    assignment[i + p] = best;
                    cost += spherical ? 1.0 + bestKey : Math.Max(0.0, bestKey + VectorMath.NormSquared(points.AsSpan((i + p) * dim, dim)));
                }
            }
            partial[t] = cost;
        });
        // Summed in thread order: the split is fixed by n and threads, so the cost is reproducible.
        double total = 0;
        foreach (double p in partial) total += p;
        return n > 0 ? total / n : 0;
    }

    /// <summary>Update step: each centroid becomes the mean of its points; a fixed summation order (point index, in
    /// double) keeps the result independent of threads. Empty clusters keep their centroid.</summary>
    private static void Update(float[] x, int n, int dim, int[] assign, float[] centroids, int k, bool spherical, int[] counts, double[] sums)
    {
        Array.Clear(counts);
        Array.Clear(sums);
        for (int i = 0; i < n; i++)
        {
            int c = assign[i];
            counts[c]++;
            var row = x.AsSpan(i * dim, dim);
            var sum = sums.AsSpan(c * dim, dim);
            for (int j = 0; j < dim; j++) sum[j] += row[j];
        }
        for (int c = 0; c < k; c++)
        {
            if (counts[c] == 0) continue;
            var cen = centroids.AsSpan(c * dim, dim);
            var sum = sums.AsSpan(c * dim, dim);
            for (int j = 0; j < dim; j++) cen[j] = (float)(sum[j] / counts[c]);
            if (spherical) VectorMath.NormalizeInPlace(cen);
        }
    }

    /// <summary>The Lloyd steps on a GPU: the training points live in device memory for the whole run.</summary>
    private sealed class GpuLloyd : IDisposable
    {
        private readonly GpuDevice _device;
        private readonly GpuBuffer<float> _points;
        private readonly float[] _norms2;
        private readonly float[] _bestKeys;
        private readonly int _n, _dim;

        private GpuLloyd(GpuDevice device, float[] x, int n, int dim)
        {
            _device = device;
            _n = n;
            _dim = dim;
            _points = GpuBuffer<float>.Upload(device, x.AsSpan(0, n * dim), "k-means points");
            _norms2 = new float[n];
            for (int i = 0; i < n; i++) _norms2[i] = VectorMath.NormSquared(x.AsSpan(i * dim, dim));
            _bestKeys = new float[n];
        }

        /// <summary>Null when <paramref name="device"/> resolves to the SIMD CPU path.</summary>
        public static GpuLloyd? Create(ComputeDevice device, float[] x, int n, int dim) =>
            GpuDevice.Get(device) is { } d ? new GpuLloyd(d, x, n, dim) : null;

        /// <summary>Assignment on the device; the cost is summed here in point order (as <see cref="Assign"/> defines it).</summary>
        public double Assign(float[] centroids, int k, bool spherical, int[] assignment)
        {
            GpuKMeans.Assign(_device, _points, _n, _dim, centroids, k, spherical, assignment, _bestKeys);
            double cost = 0;
            for (int i = 0; i < _n; i++)
                cost += spherical ? 1.0 + _bestKeys[i] : Math.Max(0.0, _bestKeys[i] + _norms2[i]);
            return _n > 0 ? cost / _n : 0;
        }

        public void Update(int[] assignment, float[] centroids, int k, int[] counts) =>
            GpuKMeans.Update(_device, _points, _n, _dim, assignment, k, centroids, counts);

        public void Dispose() => _points.Dispose();
    }

    private static int[] SampleIndices(int total, int n, Random rng)
    {
        if (n >= total)
            return Enumerable.Range(0, total).ToArray();
        // Partial Fisher–Yates: the first n slots become a uniform sample; sorted for sequential reads.
        var idx = Enumerable.Range(0, total).ToArray();
        for (int i = 0; i < n; i++)
        {
            int j = rng.Next(i, total);
            (idx[i], idx[j]) = (idx[j], idx[i]);
        }
        var sample = idx.AsSpan(0, n).ToArray();
        Array.Sort(sample);
        return sample;
    }

    /// <summary>
    /// k-means++ (D² sampling) on a subsample of at most max(8k, 10,000) points: seeding cost grows as n·k·d,
    /// and Lloyd iterations fix what a subsample misses.
    /// </summary>
    private static float[] SeedPlusPlus(float[] x, int n, int dim, int k, Random rng, CancellationToken ct)
    {
        int m = Math.Min(n, Math.Max(8 * k, 10_000));
        // Evenly spaced subsample of the (already random) training sample.
        var pts = new float[(long)m * dim];
        for (int i = 0; i < m; i++)
            x.AsSpan((int)((long)i * n / m) * dim, dim).CopyTo(pts.AsSpan(i * dim, dim));

        var centroids = new float[(long)k * dim];
        var minDist = new float[m];
        var dist = new float[m];
        int first = rng.Next(m);
        pts.AsSpan(first * dim, dim).CopyTo(centroids.AsSpan(0, dim));
        RowKernels.L2Rows(centroids.AsSpan(0, dim), pts, dim, minDist);
        for (int c = 1; c < k; c++)
        {
            if ((c & 63) == 0) ct.ThrowIfCancellationRequested();
            double total = 0;
            for (int i = 0; i < m; i++) total += minDist[i];
            int pick;
            if (total <= 0)
            {
                pick = rng.Next(m); // all points coincide with chosen centres
            }
            else
            {
                double r = rng.NextDouble() * total, acc = 0;
                pick = m - 1;
                for (int i = 0; i < m; i++)
                {
                    acc += minDist[i];
                    if (acc >= r) { pick = i; break; }
                }
            }
            var cen = centroids.AsSpan(c * dim, dim);
            pts.AsSpan(pick * dim, dim).CopyTo(cen);
            RowKernels.L2Rows(cen, pts, dim, dist);
            System.Numerics.Tensors.TensorPrimitives.Min(minDist, dist, minDist);
        }
        return centroids;
    }

    /// <summary>
    /// Re-seeds each empty cluster by splitting the currently largest one: both get its centroid nudged in
    /// opposite directions, and its count is shared between them (as FAISS does).
    /// </summary>
    private static int RepairEmpty(float[] centroids, int[] counts, int k, int dim, bool spherical, Random rng)
    {
        int repairs = 0;
        const float Eps = 1f / 1024;
        for (int c = 0; c < k; c++)
        {
            if (counts[c] != 0) continue;
            int big = 0;
            for (int j = 1; j < k; j++)
                if (counts[j] > counts[big]) big = j;
            if (counts[big] <= 1) break; // nothing left to split
            var src = centroids.AsSpan(big * dim, dim);
            var dst = centroids.AsSpan(c * dim, dim);
            for (int j = 0; j < dim; j++)
            {
                float sign = rng.Next(2) == 0 ? 1f : -1f;
                float v = src[j];
                dst[j] = v * (1 + sign * Eps) + sign * Eps * 1e-3f;
                src[j] = v * (1 - sign * Eps) - sign * Eps * 1e-3f;
            }
            if (spherical)
            {
                VectorMath.NormalizeInPlace(dst);
                VectorMath.NormalizeInPlace(src);
            }
            counts[c] = counts[big] / 2;
            counts[big] -= counts[c];
            repairs++;
        }
        return repairs;
    }
}
