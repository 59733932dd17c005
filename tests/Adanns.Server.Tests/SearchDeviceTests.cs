using Adanns.Engine;
using Adanns.Kernels.Gpu;

namespace Adanns.Server.Tests;

/// <summary>
/// <c>ServerInfo.device</c> reports the device collections' batch searches really scan on (<c>Adanns:SearchDevice</c>),
/// not a constant. Runs alone (a server of its own: see <see cref="LifecycleCollection"/>).
/// </summary>
[Collection(LifecycleCollection.Name)]
public sealed class SearchDeviceTests
{
    [Fact]
    public async Task ServerInfoReportsTheConfiguredSearchDevice()
    {
        string dir = Path.Combine(Path.GetTempPath(), "adanns-dev-" + Guid.NewGuid().ToString("N"));
        await using var app = ServerFixture.Build(dir, 0, 0, demo: false, extra: new Dictionary<string, string?>
        {
            ["Adanns:SearchDevice"] = "IlgpuCpu", // ILGPU's CPU simulator: the GPU kernels, no GPU needed
        });
        try
        {
            (int grpc, _) = await ServerFixture.StartAsync(app);
            using var client = new Adanns.Client.AdannsClient($"http://127.0.0.1:{grpc}", ServerFixture.ReadWriteKey);
            await ServerFixture.WaitServingAsync(client, TimeSpan.FromSeconds(60));
            var info = await client.ServerInfoAsync();
            Assert.Equal(GpuDevice.Get(ComputeDevice.IlgpuCpu)!.Name, info.Device);
            Assert.NotEqual("cpu", info.Device);
        }
        finally
        {
            await app.StopAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public void AnUnknownDeviceIsAOneLineConfigurationError()
    {
        Assert.Equal(ComputeDevice.Cpu, new AdannsServerOptions().SearchDeviceKind());
        Assert.Equal("cpu", new AdannsServerOptions().SearchDeviceName());
        Assert.Equal(ComputeDevice.Auto, new AdannsServerOptions { SearchDevice = "AUTO" }.SearchDeviceKind());
        var e = Assert.Throws<AdannsException>(() => new AdannsServerOptions { SearchDevice = "tpu" }.SearchDeviceKind());
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, e.Code);
        Assert.Contains("Adanns:SearchDevice", e.Message, StringComparison.Ordinal);
        Assert.Throws<AdannsException>(() => new AdannsServerOptions { SearchDevice = "2" }.SearchDeviceKind());
    }
}
