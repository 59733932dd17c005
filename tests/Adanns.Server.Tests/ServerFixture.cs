using Adanns.Client;
using Adanns.Server;
using Grpc.Health.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Adanns.Server.Tests;

/// <summary>A real Kestrel server on loopback ports, in this process, with API keys and a small demo collection.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ReadWriteKey = "rw-test-key";
    public const string ReadOnlyKey = "ro-test-key";
    public const int MaxBatch = 500;
    public const int MaxTopK = 200;
    public const int MaxMessageBytes = 4 << 20;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "adanns-server-tests-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    public int GrpcPort { get; private set; }
    public int HttpPort { get; private set; }
    public string Address => $"http://127.0.0.1:{GrpcPort}";
    public AdannsClient Client { get; private set; } = null!;

    public AdannsClient NewClient(string? key) => new(Address, key);

    public static WebApplication Build(string dir, int grpcPort, int httpPort, bool demo, string? rw = ReadWriteKey, string? ro = ReadOnlyKey,
        IReadOnlyDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Adanns:DataDirectory"] = dir,
            ["Adanns:Host"] = "127.0.0.1",
            ["Adanns:GrpcPort"] = grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Adanns:HttpPort"] = httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Adanns:Auth:ReadWriteKey"] = rw,
            ["Adanns:Auth:ReadOnlyKey"] = ro,
            ["Adanns:Limits:MaxBatch"] = MaxBatch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Adanns:Limits:MaxTopK"] = MaxTopK.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Adanns:Limits:MaxMessageBytes"] = MaxMessageBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Adanns:Demo:Enabled"] = demo ? "true" : "false",
            ["Adanns:Demo:Count"] = "3000",
            ["Adanns:Demo:Dimension"] = "32",
            ["Adanns:Demo:IndexSpec"] = "IVF16@16,Scan32",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (k, v) in extra ?? new Dictionary<string, string?>()) settings[k] = v;
        return ServerHost.Build([], settings);
    }

    /// <summary>Starts <paramref name="app"/> (built with ports 0: Kestrel binds free ones, no probe-then-bind race) and returns the bound ports.</summary>
    public static async Task<(int Grpc, int Http)> StartAsync(WebApplication app)
    {
        await app.StartAsync();
        var bound = app.Services.GetRequiredService<BoundEndpoints>();
        return (bound.GrpcPort, bound.HttpPort);
    }

    public async Task InitializeAsync()
    {
        _app = Build(_dir, 0, 0, demo: true);
        (GrpcPort, HttpPort) = await StartAsync(_app);
        Client = NewClient(ReadWriteKey);
        await WaitServingAsync(Client, TimeSpan.FromSeconds(60));
    }

    public static async Task WaitServingAsync(AdannsClient client, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (await client.HealthAsync() != HealthCheckResponse.Types.ServingStatus.Serving)
        {
            if (DateTime.UtcNow > until) throw new TimeoutException("The server did not turn Serving.");
            await Task.Delay(50);
        }
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}
