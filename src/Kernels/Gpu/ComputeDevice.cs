namespace Adanns.Kernels.Gpu;

/// <summary>Where an index or k-means runs its distance work.</summary>
public enum ComputeDevice
{
    /// <summary>The SIMD CPU kernels (the default).</summary>
    Cpu = 0,

    /// <summary>A CUDA GPU when one is present, otherwise the SIMD CPU kernels (no error).</summary>
    Auto = 1,

    /// <summary>A CUDA GPU; using it throws <see cref="GpuException"/> when none is present.</summary>
    Cuda = 2,

    /// <summary>
    /// The GPU kernels on ILGPU's CPU accelerator: a slow simulator that runs the exact kernel code without a GPU.
    /// For tests and debugging only.
    /// </summary>
    IlgpuCpu = 3,
}

/// <summary>Parsing and naming of <see cref="ComputeDevice"/>.</summary>
public static class ComputeDeviceNames
{
    /// <summary>Parses "cpu", "auto", "cuda" or "ilgpu-cpu" (case-insensitive).</summary>
    public static ComputeDevice Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "cpu" or "simd" => ComputeDevice.Cpu,
        "auto" => ComputeDevice.Auto,
        "cuda" or "gpu" => ComputeDevice.Cuda,
        "ilgpu-cpu" or "ilgpucpu" or "simulator" => ComputeDevice.IlgpuCpu,
        _ => throw new ArgumentException($"Unknown device '{text}': expected cpu, auto, cuda or ilgpu-cpu.", nameof(text)),
    };

    /// <summary>The name <see cref="Parse"/> reads back.</summary>
    public static string ToShortName(this ComputeDevice device) => device switch
    {
        ComputeDevice.Cpu => "cpu",
        ComputeDevice.Auto => "auto",
        ComputeDevice.Cuda => "cuda",
        ComputeDevice.IlgpuCpu => "ilgpu-cpu",
        _ => throw new ArgumentOutOfRangeException(nameof(device), device, "Unknown device."),
    };
}

/// <summary>
/// A GPU operation failed: no such device, not enough device memory, or the driver reported an error. The
/// process and the device stay usable; the caller may retry smaller or fall back to the CPU.
/// </summary>
public sealed class GpuException : Exception
{
    /// <summary>Creates the exception.</summary>
    public GpuException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public GpuException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception without a message (serialization and tooling).</summary>
    public GpuException() { }
}
