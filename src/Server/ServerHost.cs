using System.Net;
using System.Security.Cryptography.X509Certificates;
using Adanns.Server.Services;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Console;
using OpenTelemetry.Metrics;

namespace Adanns.Server;

/// <summary>
/// The ports the server listens on once started (a configured port 0 is bound to a free port, which is how tests
/// run side by side without racing for ports).
/// </summary>
public sealed class BoundEndpoints
{
    internal ListenOptions? Grpc { get; set; }
    internal ListenOptions? Http { get; set; }

    /// <summary>The gRPC port (after start).</summary>
    public int GrpcPort => Port(Grpc);

    /// <summary>The HTTP/1.1 port of /metrics and /healthz (after start).</summary>
    public int HttpPort => Port(Http);

    private static int Port(ListenOptions? listen) =>
        listen?.IPEndPoint?.Port is int p and > 0 ? p : throw new InvalidOperationException("The server has not started listening yet.");
}

/// <summary>Builds the server: Kestrel endpoints, gRPC services, health, reflection, metrics.</summary>
public static class ServerHost
{
    /// <summary>
    /// Builds the application from appsettings.json, <c>ADANNS__…</c> environment variables and
    /// <paramref name="args"/> (e.g. <c>--Adanns:GrpcPort=6334</c>); <paramref name="overrides"/> (tests) win over all.
    /// </summary>
    public static WebApplication Build(string[] args, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        // CreateSlimBuilder reads appsettings.json, DOTNET_/ASPNETCORE_ variables and the command line; add ours.
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddCommandLine(args);
        if (overrides is not null) builder.Configuration.AddInMemoryCollection(overrides);

        var options = builder.Configuration.GetSection(AdannsServerOptions.Section).Get<AdannsServerOptions>() ?? new AdannsServerOptions();
        builder.Services.Configure<AdannsServerOptions>(builder.Configuration.GetSection(AdannsServerOptions.Section));
        builder.Logging.AddConsole();
        // The slim builder pins the simple formatter; honour Logging:Console:FormatterName (json by default, see appsettings.json).
        if (builder.Configuration["Logging:Console:FormatterName"] is { Length: > 0 } formatter)
            builder.Services.PostConfigure<ConsoleLoggerOptions>(o => o.FormatterName = formatter);

        var address = IPAddress.TryParse(options.Host, out var ip) ? ip
            : string.Equals(options.Host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : throw new InvalidOperationException($"Adanns:Host must be an IP address such as 127.0.0.1 or 0.0.0.0 (got \"{options.Host}\").");
        var bound = new BoundEndpoints();
        builder.Services.AddSingleton(bound);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.Http2.MaxStreamsPerConnection = 256;
            k.Listen(address, options.GrpcPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2; // plain-text HTTP/2 needs Http2 only (no ALPN to negotiate)
                if (options.Tls.CertificatePath is { Length: > 0 } cert)
                    listen.UseHttps(LoadCertificate(options.Tls, cert));
                bound.Grpc = listen;
            });
            k.Listen(address, options.HttpPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                bound.Http = listen;
            });
        });

        // In cluster mode the node's replicas live in the silo's database; the single-node host is never started
        // (the collection gauges read ClusterCollectionStats, and ClusterDemo creates the demo collection).
        builder.Services.AddSingleton<DatabaseHost>();
        if (options.Cluster.Enabled) Cluster.ClusterHosting.AddCluster(builder, options, address);
        else builder.Services.AddHostedService(sp => sp.GetRequiredService<DatabaseHost>());
        builder.Services.AddSingleton<ServerMetrics>();
        builder.Services.AddSingleton<ApiInterceptor>();
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = options.Limits.MaxMessageBytes;
            o.MaxSendMessageSize = options.Limits.MaxMessageBytes;
            o.EnableDetailedErrors = false;
            o.Interceptors.Add<ApiInterceptor>();
        });
        builder.Services.AddGrpcReflection();
        if (!options.Cluster.Enabled) builder.Services.AddHealthChecks().AddCheck<DatabaseHost>("database");
        builder.Services.AddGrpcHealthChecks(o => o.UseHealthChecksCache = false);
        builder.Services.Configure<HealthCheckPublisherOptions>(o =>
        {
            o.Delay = TimeSpan.Zero;                  // grpc.health.v1 Watch follows the publisher
            o.Period = TimeSpan.FromSeconds(1);
        });
        bool names = options.Auth.MetricsCollectionNames;
        builder.Services.AddOpenTelemetry().WithMetrics(m =>
        {
            m.AddMeter(ServerMetrics.MeterName, Engine.Collections.EngineMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel");
            // Names not allowed: the engine's instruments lose their collection label (counters and histograms sum over
            // all collections); its per-collection points gauge is dropped (adanns_collection_points has the sum).
            if (!names)
            {
                m.AddView(i => i.Meter.Name != Engine.Collections.EngineMetrics.MeterName ? null
                    : i.Name == "adanns.engine.collection.points" ? MetricStreamConfiguration.Drop
                    : new MetricStreamConfiguration { TagKeys = ["path", "outcome"] });
            }
            m.AddPrometheusExporter();
        });

        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Adanns.Server");
        if (!options.Auth.Enabled)
            log.LogWarning("No API keys configured (Adanns:Auth:ReadWriteKey / ReadOnlyKey): authentication is OFF; every client may read and write.{Extra}",
                IPAddress.IsLoopback(address) ? " The server listens on loopback only." : $" The server listens on {address}: configure keys before exposing it.");
        log.LogInformation("gRPC on {Scheme}://{Host}:{GrpcPort} (HTTP/2), /metrics and /healthz on http://{Host}:{HttpPort} (HTTP/1.1); SIMD {Simd}",
            options.Tls.CertificatePath is { Length: > 0 } ? "https" : "http", options.Host, options.GrpcPort, options.Host, options.HttpPort, Kernels.SimdInfo.Describe());

        // /metrics and /healthz answer only on the HTTP/1.1 port; gRPC needs HTTP/2, so it never answers there.
        app.Use((ctx, next) =>
        {
            bool http1 = HttpProtocol.IsHttp11(ctx.Request.Protocol) || HttpProtocol.IsHttp10(ctx.Request.Protocol);
            bool plain = ctx.Request.Path.StartsWithSegments("/metrics") || ctx.Request.Path.StartsWithSegments("/healthz");
            if (plain && !http1)
            {
                ctx.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }
            // /metrics names collections and call rates: behind a key whenever keys are configured (/healthz is not).
            if (ctx.Request.Path.StartsWithSegments("/metrics") && !MetricsAuthorized(options.Auth, ctx.Request))
            {
                ctx.Response.StatusCode = StatusCodes.Status401Unauthorized;
                ctx.Response.Headers.WWWAuthenticate = "Bearer";
                return ctx.Response.WriteAsync("Send an API key: \"Authorization: Bearer KEY\" or the \"api-key\" header.\n");
            }
            return next(ctx);
        });
        app.UseRequestFrameGuard(options.Limits.MaxMessageBytes);
        if (options.Cluster.Enabled)
        {
            Cluster.ClusterHosting.MapCluster(app);
        }
        else
        {
            app.MapGrpcService<CollectionsService>();
            app.MapGrpcService<PointsService>();
            app.MapGrpcService<SearchService>();
            app.MapGrpcService<AdminService>();
        }
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        app.MapHealthChecks("/healthz", new HealthCheckOptions { ResultStatusCodes = { [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable } });
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }

    /// <summary>True when keys are off, or the request carries the metrics, read-only or read-write key.</summary>
    internal static bool MetricsAuthorized(AuthOptions auth, HttpRequest request)
    {
        if (!auth.Enabled) return true;
        string? given = request.Headers[ApiInterceptor.ApiKeyHeader].FirstOrDefault();
        if (string.IsNullOrEmpty(given) && request.Headers.Authorization.FirstOrDefault() is { } a && a.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            given = a["Bearer ".Length..].Trim();
        if (string.IsNullOrEmpty(given)) return false;
        var g = System.Text.Encoding.UTF8.GetBytes(given);
        foreach (var key in new[] { auth.MetricsKey, auth.ReadOnlyKey, auth.ReadWriteKey })
            if (!string.IsNullOrEmpty(key) && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(g, System.Text.Encoding.UTF8.GetBytes(key)))
                return true;
        return false;
    }

    private static X509Certificate2 LoadCertificate(TlsOptions tls, string path)
    {
        if (tls.KeyPath is { Length: > 0 } key)
            return tls.Password is { Length: > 0 } pw
                ? X509Certificate2.CreateFromEncryptedPemFile(path, pw, key)
                : X509Certificate2.CreateFromPemFile(path, key);
        return X509CertificateLoader.LoadPkcs12FromFile(path, tls.Password);
    }
}
