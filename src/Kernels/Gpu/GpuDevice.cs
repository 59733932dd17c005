using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Adanns.Kernels.Gpu;

/// <summary>
/// One ILGPU accelerator (a CUDA GPU, or ILGPU's CPU accelerator in tests) with its kernels compiled once and
/// cached. Instances are process-wide: <see cref="Get"/> returns the same object for the same device, and every
/// instance shares one ILGPU <see cref="Context"/>.
/// </summary>
/// <remarks>
/// <para>Thread safety: operations on one device are serialised by <see cref="Sync"/> (one ILGPU stream); callers
/// on several threads simply queue.</para>
/// <para>Errors: every allocation is checked against the device's memory first, and allocation or launch failures
/// from the driver are rethrown as <see cref="GpuException"/> — never a crashed process.</para>
/// </remarks>
public sealed class GpuDevice
{
    /// <summary>Largest k the device top-k selection keeps per query (its per-thread list lives in local memory).</summary>
    public const int MaxK = GpuKernels.KMax;

    private static readonly Lock s_gate = new();
    private static Context? s_context;
    private static GpuDevice? s_cuda, s_cpu;
    private static bool s_cudaProbed;
    private static string? s_cudaError;

    private readonly Lazy<GpuKernels> _kernels;

    private GpuDevice(Accelerator accelerator)
    {
        Accelerator = accelerator;
        // The CPU accelerator rejects groups above its MaxNumThreadsPerGroup (16 here); a CUDA GPU takes 1024.
        int maxThreads = Math.Max(1, accelerator.MaxNumThreadsPerGroup);
        int tile = 1;
        while ((tile * 2) * (tile * 2) <= maxThreads && tile * 2 <= GpuKernels.MaxTile) tile *= 2;
        Tile = tile;
        ScanGroupSize = Math.Min(128, maxThreads);
        _kernels = new Lazy<GpuKernels>(() => new GpuKernels(accelerator), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The ILGPU accelerator (for callers that manage their own buffers).</summary>
    public Accelerator Accelerator { get; }

    /// <summary>Serialises work on this device; holders bind the accelerator to their thread first.</summary>
    public Lock Sync { get; } = new();

    /// <summary>Side T of the T×T thread groups of the tiled distance kernel (16 on a GPU, 4 on the CPU accelerator);
    /// a group covers 4T queries × 4T rows.</summary>
    public int Tile { get; }

    /// <summary>Threads per group of the list-scan kernel.</summary>
    public int ScanGroupSize { get; }

    /// <summary>Device name as the driver reports it.</summary>
    public string Name => Accelerator.Name;

    /// <summary>True on a CUDA GPU; false on ILGPU's CPU accelerator (the simulator).</summary>
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

    /// <summary>Device memory in bytes.</summary>
    public long MemoryBytes => Accelerator.MemorySize;

    internal GpuKernels Kernels => _kernels.Value;

    /// <summary>True when a CUDA device can be used in this process.</summary>
    public static bool CudaAvailable => GetCuda() is not null;

    /// <summary>
    /// The device for <paramref name="device"/>: null for <see cref="ComputeDevice.Cpu"/>, and for
    /// <see cref="ComputeDevice.Auto"/> when no CUDA GPU exists (callers then run the SIMD CPU kernels).
    /// </summary>
    /// <exception cref="GpuException"><see cref="ComputeDevice.Cuda"/> was asked for and no CUDA device exists.</exception>
    public static GpuDevice? Get(ComputeDevice device) => device switch
    {
        ComputeDevice.Cpu => null,
        ComputeDevice.Auto => GetCuda(),
        ComputeDevice.Cuda => GetCuda() ?? throw new GpuException(
            $"No CUDA device is available ({s_cudaError ?? "driver missing or no GPU"}); use ComputeDevice.Auto to fall back to the CPU."),
        ComputeDevice.IlgpuCpu => GetCpu(),
        _ => throw new ArgumentOutOfRangeException(nameof(device), device, "Unknown device."),
    };

    private static Context Context
    {
        get
        {
            lock (s_gate)
                return s_context ??= Context.Create(b => b.Default().EnableAlgorithms());
        }
    }

    private static GpuDevice? GetCuda()
    {
        lock (s_gate)
        {
            if (s_cudaProbed) return s_cuda;
            s_cudaProbed = true;
            try
            {
                // The device list does not support LINQ.
                foreach (var d in Context.Devices)
                {
                    if (d.AcceleratorType != AcceleratorType.Cuda) continue;
                    s_cuda = new GpuDevice(d.CreateAccelerator(Context));
                    break;
                }
            }
            catch (Exception e) when (e is AcceleratorException or InvalidOperationException or DllNotFoundException or TypeInitializationException or NotSupportedException)
            {
                s_cuda = null; // a broken driver counts as no CUDA device: Auto falls back to the CPU
                s_cudaError = $"{e.GetType().Name}: {e.Message}";
            }
            return s_cuda;
        }
    }

    private static GpuDevice GetCpu()
    {
        lock (s_gate)
            return s_cpu ??= new GpuDevice(Context.CreateCPUAccelerator(0, CPUAcceleratorMode.Parallel));
    }

    /// <summary>Allocates <paramref name="count"/> elements on the device, checking its memory first.</summary>
    /// <exception cref="GpuException">The device has too little memory or the driver refused.</exception>
    public MemoryBuffer1D<T, Stride1D.Dense> Allocate<T>(long count, string what) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (count > MemoryBytes / size)
            throw new GpuException($"{what} needs {(decimal)count * size:N0} bytes of device memory; {Name} has {MemoryBytes:N0}.");
        long bytes = count * size;
        try
        {
            lock (Sync)
            {
                Accelerator.Bind();
                return Accelerator.Allocate1D<T>(Math.Max(1, count));
            }
        }
        catch (Exception e) when (e is not GpuException and not OutOfMemoryException)
        {
            throw new GpuException($"Allocating {bytes:N0} bytes for {what} on {Name} failed: {e.Message}", e);
        }
        catch (OutOfMemoryException e)
        {
            throw new GpuException($"Out of memory allocating {bytes:N0} bytes for {what} on {Name}.", e);
        }
    }

    /// <summary>Runs <paramref name="work"/> under the device lock, turning driver failures into <see cref="GpuException"/>.</summary>
    internal void Run(string what, Action work)
    {
        lock (Sync)
        {
            try
            {
                // A CUDA context is current per thread; callers arrive on any thread (thread pool, test runners).
                Accelerator.Bind();
                work();
            }
            catch (Exception e) when (IsDriverError(e))
            {
                throw Wrap(what, e);
            }
        }
    }

    /// <summary>Exceptions ILGPU or the driver raise for a failed allocation, copy or launch.</summary>
    internal static bool IsDriverError(Exception e) =>
        e is not GpuException && (e is AcceleratorException or OutOfMemoryException or InvalidOperationException
            || e.GetType().Namespace?.StartsWith("ILGPU", StringComparison.Ordinal) == true);

    internal GpuException Wrap(string what, Exception e) => new($"{what} failed on {Name}: {e.Message}", e);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({(IsCuda ? "CUDA" : "ILGPU CPU accelerator")}, {MemoryBytes / (1L << 20):N0} MiB)";
}
