using ILGPU;
using ILGPU.Runtime;

namespace Adanns.Kernels.Gpu;

/// <summary>
/// A 1-D array in device memory (rows, row terms, points): uploaded once and reused across calls. Dispose it to
/// give the memory back.
/// </summary>
public sealed class GpuBuffer<T> : IDisposable where T : unmanaged
{
    private MemoryBuffer1D<T, Stride1D.Dense>? _buffer;

    /// <summary>Allocates <paramref name="length"/> elements on <paramref name="device"/> (contents undefined).</summary>
    /// <exception cref="GpuException">Not enough device memory.</exception>
    public GpuBuffer(GpuDevice device, long length, string what = "buffer")
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        Length = length;
        _buffer = device.Allocate<T>(length, what);
    }

    /// <summary>Allocates and fills a buffer with <paramref name="data"/>.</summary>
    public static GpuBuffer<T> Upload(GpuDevice device, ReadOnlySpan<T> data, string what = "buffer")
    {
        var b = new GpuBuffer<T>(device, data.Length, what);
        try
        {
            b.CopyFrom(0, data);
            return b;
        }
        catch
        {
            b.Dispose();
            throw;
        }
    }

    /// <summary>The device holding the buffer.</summary>
    public GpuDevice Device { get; }

    /// <summary>Elements held.</summary>
    public long Length { get; }

    internal ArrayView<T> View => (_buffer ?? throw new ObjectDisposedException(nameof(GpuBuffer<T>))).View.SubView(0, Length);

    /// <summary>Copies <paramref name="data"/> into elements [offset, offset + data.Length).</summary>
    public void CopyFrom(long offset, ReadOnlySpan<T> data)
    {
        if (offset < 0 || offset + data.Length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"[{offset}, {offset + data.Length}) is outside the buffer's {Length} elements.");
        if (data.IsEmpty) return;
        ArrayView1D<T, Stride1D.Dense> view = View.SubView(offset, data.Length);
        lock (Device.Sync)
        {
            try
            {
                Device.Accelerator.Bind();
                view.CopyFromCPU(Device.Accelerator.DefaultStream, data);
            }
            catch (Exception e) when (GpuDevice.IsDriverError(e))
            {
                throw Device.Wrap("upload", e);
            }
        }
    }

    /// <summary>Copies elements [offset, offset + destination.Length) to <paramref name="destination"/>.</summary>
    public void CopyTo(long offset, Span<T> destination)
    {
        if (offset < 0 || offset + destination.Length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"[{offset}, {offset + destination.Length}) is outside the buffer's {Length} elements.");
        if (destination.IsEmpty) return;
        ArrayView1D<T, Stride1D.Dense> view = View.SubView(offset, destination.Length);
        lock (Device.Sync)
        {
            try
            {
                Device.Accelerator.Bind();
                view.CopyToCPU(Device.Accelerator.DefaultStream, destination);
                Device.Accelerator.DefaultStream.Synchronize();
            }
            catch (Exception e) when (GpuDevice.IsDriverError(e))
            {
                throw Device.Wrap("download", e);
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_buffer is null) return;
        lock (Device.Sync)
        {
            Device.Accelerator.Bind(); // freeing device memory needs the owning context current on this thread
            _buffer.Dispose();
            _buffer = null;
        }
    }
}
