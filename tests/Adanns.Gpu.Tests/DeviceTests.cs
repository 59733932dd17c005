using Adanns.Kernels.Gpu;

namespace Adanns.Gpu.Tests;

public class DeviceTests
{
    [Fact]
    public void SelectionIsCachedAndCpuMeansTheSimdPath()
    {
        Assert.Null(GpuDevice.Get(ComputeDevice.Cpu));
        Assert.Same(TestDevice.Device, GpuDevice.Get(TestDevice.Kind));
        // Auto is CUDA when present and otherwise the SIMD path — never the simulator.
        var auto = GpuDevice.Get(ComputeDevice.Auto);
        Assert.Equal(GpuDevice.CudaAvailable, auto is not null);
        if (auto is not null) Assert.True(auto.IsCuda);
    }

    [NoCudaFact]
    public void CudaWithoutADeviceThrowsGpuException()
    {
        var e = Assert.Throws<GpuException>(() => GpuDevice.Get(ComputeDevice.Cuda));
        Assert.Contains("No CUDA device", e.Message);
    }

    [Fact]
    public void AnOversizedAllocationIsAnExceptionNotACrash()
    {
        var dev = TestDevice.Device;
        var e = Assert.Throws<GpuException>(() => new GpuBuffer<float>(dev, dev.MemoryBytes / 4 + 1, "test matrix"));
        Assert.Contains("test matrix", e.Message);
        // The device still works afterwards.
        using var b = GpuBuffer<float>.Upload(dev, [1f, 2f, 3f]);
        var back = new float[3];
        b.CopyTo(0, back);
        Assert.Equal(new[] { 1f, 2f, 3f }, back);
    }

    [Theory]
    [InlineData("cpu", ComputeDevice.Cpu)]
    [InlineData("AUTO", ComputeDevice.Auto)]
    [InlineData("cuda", ComputeDevice.Cuda)]
    [InlineData("ilgpu-cpu", ComputeDevice.IlgpuCpu)]
    public void DeviceNamesRoundTrip(string name, ComputeDevice kind)
    {
        Assert.Equal(kind, ComputeDeviceNames.Parse(name));
        Assert.Equal(kind, ComputeDeviceNames.Parse(kind.ToShortName()));
        Assert.Throws<ArgumentException>(() => ComputeDeviceNames.Parse("tpu"));
    }
}
