namespace Adanns.Server;

/// <summary>
/// Server settings, bound from the <c>Adanns</c> configuration section: appsettings.json, then environment variables
/// (<c>ADANNS__GRPCPORT=6334</c>, <c>ADANNS__AUTH__READWRITEKEY=…</c>), then the command line
/// (<c>--Adanns:GrpcPort=6334</c>), later sources winning.
/// </summary>
public sealed class AdannsServerOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Adanns";

    /// <summary>Directory of the database (created if missing).</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>Address both ports bind to. 127.0.0.1 by default; 0.0.0.0 to listen on every interface.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>gRPC port (HTTP/2 only; plain text unless <see cref="Tls"/> is set).</summary>
    public int GrpcPort { get; set; } = 50051;

    /// <summary>HTTP/1.1 port serving <c>/metrics</c> (Prometheus text) and <c>/healthz</c>; 0 = pick a free port.</summary>
    public int HttpPort { get; set; } = 9464;

    /// <summary>Profile every newly trained index so searches can pass a compute budget (max_flops / max_micros).</summary>
    public bool ProfileIndexes { get; set; } = true;

    /// <summary>
    /// Where collections' batch searches scan float / SQ8 lists and trainings run k-means: "cpu" (default), "auto" (a
    /// CUDA GPU when present, else the CPU), "cuda" (required: the server does not start without one) or "ilgpucpu"
    /// (ILGPU's CPU simulator, tests). <c>ServerInfo.device</c> reports the device it resolves to.
    /// </summary>
    public string SearchDevice { get; set; } = "cpu";

    /// <summary>
    /// <see cref="SearchDevice"/> as a device kind; an unknown value is a one-line configuration error naming the key
    /// and the allowed values.
    /// </summary>
    public Kernels.Gpu.ComputeDevice SearchDeviceKind() =>
        Enum.TryParse<Kernels.Gpu.ComputeDevice>(SearchDevice, ignoreCase: true, out var d) && Enum.IsDefined(d) && !int.TryParse(SearchDevice, out _)
            ? d
            : throw new Engine.AdannsException(Engine.AdannsErrorCode.InvalidConfiguration,
                $"Adanns:SearchDevice must be cpu, auto, cuda or ilgpucpu (got \"{SearchDevice}\").");

    /// <summary>
    /// The device <see cref="SearchDevice"/> resolves to on this machine: "cpu", or the GPU's name (for "auto" without a
    /// CUDA device, "cpu"; for "cuda" without one, a <see cref="Kernels.Gpu.GpuException"/>).
    /// </summary>
    public string SearchDeviceName() => Kernels.Gpu.GpuDevice.Get(SearchDeviceKind())?.Name ?? "cpu";

    /// <summary>
    /// Backpressure: the most bytes of acknowledged vectors a collection's index may lag behind by while it trains; beyond
    /// it writes wait (see <c>DatabaseOptions.MaxIndexBacklogBytes</c>). At least 1 MiB; default 512 MiB.
    /// </summary>
    public long MaxIndexBacklogBytes { get; set; } = 512L << 20;

    /// <summary>
    /// How long a write waits for that backlog before it answers <c>UNAVAILABLE</c> (error code <c>Overloaded</c>:
    /// nothing written, retry later); in [0, 3600], default 30.
    /// </summary>
    public double BackpressureTimeoutSeconds { get; set; } = 30;

    /// <summary>ONNX Runtime threads of the "minilm" text embedder (per batch).</summary>
    public int EmbedderThreads { get; set; } = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>
    /// Index spec of collections created without one. <c>Auto</c> (recall@10 target 0.95; <c>Auto@0.9</c> names another):
    /// the index chooses its own pipeline on the collection's data when it trains, and searches without parameters run at
    /// the target.
    /// </summary>
    public string DefaultIndexSpec { get; set; } = "Auto";

    /// <summary>API keys (both null: authentication off).</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>TLS for the gRPC port.</summary>
    public TlsOptions Tls { get; set; } = new();

    /// <summary>Request limits.</summary>
    public LimitOptions Limits { get; set; } = new();

    /// <summary>The demo collection made when the database holds no collection at startup.</summary>
    public DemoOptions Demo { get; set; } = new();

    /// <summary>Cluster mode (off: a single node, exactly as without this section).</summary>
    public ClusterServerOptions Cluster { get; set; } = new();
}

/// <summary>
/// Cluster mode: the process joins an Orleans cluster (membership and collection metadata in Redis) and serves
/// sharded, replicated collections; every node answers the whole API. Keys: <c>Adanns:Cluster:Enabled</c>,
/// <c>Adanns:Cluster:Redis</c>, <c>Adanns:Cluster:ClusterId</c>, <c>Adanns:Cluster:SiloPort</c>,
/// <c>Adanns:Cluster:GatewayPort</c>.
/// </summary>
public sealed class ClusterServerOptions
{
    /// <summary>Join a cluster (default false: single node).</summary>
    public bool Enabled { get; set; }

    /// <summary>Redis server holding the membership table and the collection metadata, host:port.</summary>
    public string Redis { get; set; } = "127.0.0.1:6379";

    /// <summary>Cluster name: nodes with the same id (and Redis) form one cluster.</summary>
    public string ClusterId { get; set; } = "adanns";

    /// <summary>Port for node-to-node (silo) traffic.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Orleans client gateway port.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>This node's stable name (its replicas are found by it after a restart); default <c>{address}:{SiloPort}</c>.</summary>
    public string? NodeName { get; set; }

    /// <summary>Address other nodes reach this one at; default Adanns:Host, or the machine's own IPv4 when Host is 0.0.0.0.</summary>
    public string? AdvertisedHost { get; set; }

    /// <summary>A shard replica whose node has been gone this long is re-created on another node.</summary>
    public double ReReplicateAfterSeconds { get; set; } = 300;
}

/// <summary>API keys, sent by clients in the <c>api-key</c> metadata header.</summary>
public sealed class AuthOptions
{
    /// <summary>Key allowed every RPC.</summary>
    public string? ReadWriteKey { get; set; }

    /// <summary>Key allowed only reads (Get/List/Exists/Count/Search/ServerInfo); writes answer PermissionDenied.</summary>
    public string? ReadOnlyKey { get; set; }

    /// <summary>
    /// Key allowed only <c>/metrics</c> (for a scraper that should not read data). The read-write and read-only keys
    /// are accepted there too. Sent as <c>Authorization: Bearer KEY</c> or in the <c>api-key</c> header.
    /// </summary>
    public string? MetricsKey { get; set; }

    /// <summary>
    /// Label per-collection metrics with the collection's name (true). False: the gauges are summed over all
    /// collections, so a scrape reveals no names.
    /// </summary>
    public bool MetricsCollectionNames { get; set; } = true;

    /// <summary>
    /// True when at least one key is configured: <c>/metrics</c> then needs one. RPCs (but health) need the read-write or
    /// read-only key once either is configured; a metrics key alone guards only <c>/metrics</c>.
    /// </summary>
    public bool Enabled => !string.IsNullOrEmpty(ReadWriteKey) || !string.IsNullOrEmpty(ReadOnlyKey) || !string.IsNullOrEmpty(MetricsKey);
}

/// <summary>TLS on the gRPC port from a PFX/PKCS#12 file, or a PEM certificate and key.</summary>
public sealed class TlsOptions
{
    /// <summary>Certificate file (.pfx/.p12, or .pem/.crt with <see cref="KeyPath"/>); null: plain text.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key file (with a PEM certificate).</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of the PFX file or of the encrypted PEM key.</summary>
    public string? Password { get; set; }
}

/// <summary>Limits on what one request may ask.</summary>
public sealed class LimitOptions
{
    /// <summary>Largest gRPC message received or sent, in bytes.</summary>
    public int MaxMessageBytes { get; set; } = 64 << 20;

    /// <summary>Largest <c>top_k</c>.</summary>
    public int MaxTopK { get; set; } = 1_000;

    /// <summary>Most points per Upsert/Delete/Get and queries per SearchBatch.</summary>
    public int MaxBatch { get; set; } = 10_000;

    /// <summary>Most nodes in one filter (leaves and combinators).</summary>
    public int MaxFilterNodes { get; set; } = 1_000;
}

/// <summary>The built-in demo collection (synthetic Matryoshka data, cosine metric).</summary>
public sealed class DemoOptions
{
    /// <summary>Create it when the database has no collection at startup.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Collection name.</summary>
    public string Name { get; set; } = "demo";

    /// <summary>Points.</summary>
    public int Count { get; set; } = 20_000;

    /// <summary>Dimension.</summary>
    public int Dimension { get; set; } = 128;

    /// <summary>Index spec (default <c>Auto</c>: tuned on the demo data for recall@10 0.95).</summary>
    public string IndexSpec { get; set; } = "Auto";

    /// <summary>Cluster mode: shards of the demo collection (created by the first node that finds the cluster
    /// without collections, once enough nodes are live for <see cref="ReplicationFactor"/>).</summary>
    public int Shards { get; set; } = 1;

    /// <summary>Cluster mode: replicas of each demo shard.</summary>
    public int ReplicationFactor { get; set; } = 1;
}
