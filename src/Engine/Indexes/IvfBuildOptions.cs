using Adanns.Engine.Clustering;
using Adanns.Kernels.Gpu;

namespace Adanns.Engine.Indexes;

/// <summary>
/// Build options in the terms of a plain IVF spec (float or SQ8 lists): <see cref="VectorIndex.Build(VectorSet, IndexSpec, Metric, VectorIndexBuildOptions?)"/>
/// turns them into the pipeline's <see cref="PqBuildOptions"/> (<see cref="ToPipelineOptions"/>).
/// </summary>
/// <param name="KMeans">k-means options (sample size, iterations, seed, threads).</param>
/// <param name="RotationSample">Rows used to learn the rotation when the spec has <c>Rot</c>.</param>
/// <param name="Threads">Threads for assignment (0 = all cores).</param>
/// <param name="ScanStoreDims">Dims each scan code holds; scans at larger d_s read the resident rows. Default: the spec's
/// scan dim (or d_c). Raise it to sweep d_s at query time.</param>
/// <param name="Device">One knob for the GPU: k-means training runs there (unless <see cref="KMeans"/> names a device
/// itself) and the built index's <see cref="IvfIndex.Device"/> is set to it. Default: the SIMD CPU path.</param>
public sealed record IvfBuildOptions(KMeansOptions? KMeans = null, int RotationSample = 25_000, int Threads = 0, int? ScanStoreDims = null,
    ComputeDevice Device = ComputeDevice.Cpu)
{
    /// <summary>The same choices as the pipeline's build options.</summary>
    public PqBuildOptions ToPipelineOptions() =>
        new(KMeans: KMeans, Threads: Threads, RotationSample: RotationSample, ScanStoreDims: ScanStoreDims, Device: Device);
}

/// <summary>Build progress: the phase and a fraction in [0, 1] of that phase.</summary>
public readonly record struct IvfBuildProgress(string Phase, double Fraction, string? Detail = null);
