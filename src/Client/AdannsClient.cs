using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Adanns.Protocol.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Metric = Adanns.Protocol.V1.Metric;
using Filter = Adanns.Protocol.V1.Filter;
using SearchParams = Adanns.Protocol.V1.SearchParams;

namespace Adanns.Client;

/// <summary>How to reach an AdannsDotNet server.</summary>
public sealed record AdannsClientOptions
{
    /// <summary>Server address: <c>http://127.0.0.1:50051</c> (plain-text HTTP/2) or <c>https://host:port</c> (TLS).</summary>
    public Uri Address { get; set; } = new("http://127.0.0.1:50051");

    /// <summary>API key sent in the <c>api-key</c> header of every call; null when the server has auth off.</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// For https: trust this certificate (e.g. a self-signed server certificate) in addition to the system store.
    /// </summary>
    public X509Certificate2? TrustedServerCertificate { get; set; }

    /// <summary>Largest message sent or received, bytes (match the server's Adanns:Limits:MaxMessageBytes).</summary>
    public int MaxMessageBytes { get; set; } = 64 << 20;

    /// <summary>Deadline applied to calls that do not pass their own; null = none.</summary>
    public TimeSpan? DefaultTimeout { get; set; }

    /// <summary>Custom handler (proxies, tests); replaces the one built from the options above.</summary>
    public HttpMessageHandler? HttpHandler { get; set; }
}

/// <summary>
/// Client of an AdannsDotNet server. Thread-safe; create one per server and reuse it (it holds one HTTP/2 connection pool).
/// <para><b>The application model</b> (use this): <see cref="AdannsClient"/> is an <see cref="IAdannsDatabase"/>, and
/// <see cref="OpenCollectionAsync"/> / <see cref="CreateCollectionAsync(CollectionConfig, CancellationToken)"/> return an
/// <see cref="IAdannsCollection"/> that takes and returns the engine's <see cref="VectorRecord"/>, <see cref="TextRecord"/>,
/// <see cref="RecordId"/>, <see cref="PayloadValue"/>, <see cref="Engine.Collections.Filter"/>, <see cref="Engine.Indexes.SearchParams"/>
/// and <see cref="SearchResult"/> exactly as an embedded <see cref="Collection"/> does, and fails with
/// <see cref="AdannsException"/> carrying the server's code. Code written against <see cref="IAdannsDatabase"/> runs
/// unchanged over an embedded <see cref="AdannsDatabase"/>.</para>
/// <para><b>The wire layer</b> (below it, kept on purpose): the methods that take or return adanns.v1 messages
/// (<c>CollectionInfo</c>, <c>Point</c>, <c>PointId</c>, <c>SearchRequest</c>/<c>SearchResponse</c>, build progress, server
/// info, health) and the raw generated clients <see cref="Collections"/>, <see cref="Points"/>, <see cref="SearchApi"/>,
/// <see cref="Admin"/> and <see cref="Health"/>. They expose every protocol field (cluster placement, server timings,
/// streaming progress) for tools and protocol tests, and throw <see cref="RpcException"/> with the server's status and
/// message (the code is in the <c>adanns-error-code</c> trailer). Application code should not need them.</para>
/// </summary>
public sealed partial class AdannsClient : IAdannsDatabase, IDisposable
{
    private readonly GrpcChannel? _channel; // null when the clients come from Grpc.Net.ClientFactory (AddAdannsClient)
    private readonly TimeSpan? _timeout;

    /// <summary>Connects to <paramref name="address"/> (e.g. "http://127.0.0.1:50051") with an optional API key.</summary>
    public AdannsClient(string address, string? apiKey = null)
        : this(new AdannsClientOptions { Address = new Uri(address), ApiKey = apiKey })
    {
    }

    /// <summary>Connects with <paramref name="options"/>.</summary>
    public AdannsClient(AdannsClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _timeout = options.DefaultTimeout;
        var handler = options.HttpHandler ?? CreateHandler(options);
        _channel = GrpcChannel.ForAddress(options.Address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = options.HttpHandler is null,
            MaxReceiveMessageSize = options.MaxMessageBytes,
            MaxSendMessageSize = options.MaxMessageBytes,
        });
        CallInvoker invoker = _channel.CreateCallInvoker();
        if (!string.IsNullOrEmpty(options.ApiKey))
        {
            string key = options.ApiKey;
            invoker = invoker.Intercept(metadata =>
            {
                metadata.Add("api-key", key);
                return metadata;
            });
        }
        Collections = new Collections.CollectionsClient(invoker);
        Points = new Points.PointsClient(invoker);
        SearchApi = new Search.SearchClient(invoker);
        Admin = new Admin.AdminClient(invoker);
        Health = new Grpc.Health.V1.Health.HealthClient(invoker);
    }

    /// <summary>Over generated clients made elsewhere (by <c>AddAdannsClient</c> on Grpc.Net.ClientFactory).</summary>
    internal AdannsClient(Collections.CollectionsClient collections, Points.PointsClient points, Search.SearchClient search, Admin.AdminClient admin,
        Grpc.Health.V1.Health.HealthClient health, TimeSpan? defaultTimeout)
    {
        _timeout = defaultTimeout;
        Collections = collections;
        Points = points;
        SearchApi = search;
        Admin = admin;
        Health = health;
    }

    internal static SocketsHttpHandler CreateHandler(AdannsClientOptions o)
    {
        var h = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
        };
        if (o.TrustedServerCertificate is { } trusted)
        {
            h.SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, chain, errors) =>
                {
                    if (errors == SslPolicyErrors.None) return true;
                    if (cert is null || chain is null) return false;
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(trusted);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return chain.Build(new X509Certificate2(cert)) && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == 0;
                },
            };
        }
        return h;
    }

    /// <summary>Raw adanns.v1.Collections client.</summary>
    public Collections.CollectionsClient Collections { get; }

    /// <summary>Raw adanns.v1.Points client.</summary>
    public Points.PointsClient Points { get; }

    /// <summary>Raw adanns.v1.Search client.</summary>
    public Search.SearchClient SearchApi { get; }

    /// <summary>Raw adanns.v1.Admin client.</summary>
    public Admin.AdminClient Admin { get; }

    /// <summary>grpc.health.v1.Health client.</summary>
    public Grpc.Health.V1.Health.HealthClient Health { get; }

    internal CallOptions Options(CancellationToken ct) =>
        new(deadline: _timeout is { } t ? DateTime.UtcNow + t : null, cancellationToken: ct);

    // ------------------------------------------------------------ wire layer: adanns.v1 messages (see the class remarks)
    // ------------------------------------------------------------ collections

    /// <summary>
    /// Creates a collection. <paramref name="indexSpec"/> null = the server default. <paramref name="shards"/>,
    /// <paramref name="replicationFactor"/> and <paramref name="writeConsistency"/> (null = the server's default: 1, 1
    /// and 0 = every live replica) are for a server in cluster mode; a single node accepts only 1 / 1 / 0.
    /// </summary>
    public async Task<CollectionInfo> CreateCollectionAsync(string name, int dimension, Metric metric, string? indexSpec = null,
        bool rotate = false, int? trainThreshold = null, int? shards = null, int? replicationFactor = null, int? writeConsistency = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(dimension);
        var r = new CreateCollectionRequest { Name = name, Dimension = (uint)dimension, Metric = metric, IndexSpec = indexSpec ?? "", Rotate = rotate };
        if (trainThreshold is int t)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(t);
            r.TrainThreshold = (uint)t;
        }
        // Negative values fail here; the server checks the upper bounds and names the field and its range.
        if (shards is int s)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(s);
            r.Shards = (uint)s;
        }
        if (replicationFactor is int rf)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(rf);
            r.ReplicationFactor = (uint)rf;
        }
        if (writeConsistency is int wc)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(wc);
            r.WriteConsistency = (uint)wc;
        }
        return await Collections.CreateAsync(r, Options(cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>A collection's configuration and counters.</summary>
    public async Task<CollectionInfo> GetCollectionAsync(string name, CancellationToken cancellationToken = default) =>
        await Collections.GetAsync(new GetCollectionRequest { Name = name }, Options(cancellationToken)).ConfigureAwait(false);

    /// <summary>Names of the served collections.</summary>
    public async Task<IReadOnlyList<string>> ListCollectionsAsync(CancellationToken cancellationToken = default) =>
        (await Collections.ListAsync(new ListCollectionsRequest(), Options(cancellationToken)).ConfigureAwait(false)).Names;

    /// <summary>Drops a collection (NotFound when there is none).</summary>
    public async Task DeleteCollectionAsync(string name, CancellationToken cancellationToken = default) =>
        await Collections.DeleteAsync(new DeleteCollectionRequest { Name = name }, Options(cancellationToken)).ConfigureAwait(false);

    /// <summary>Whether a collection exists.</summary>
    public async Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default) =>
        (await Collections.ExistsAsync(new CollectionExistsRequest { Name = name }, Options(cancellationToken)).ConfigureAwait(false)).Exists;

    // ------------------------------------------------------------ points

    /// <summary>Upserts points atomically; with <paramref name="wait"/> returns once they are durable and searchable.</summary>
    public async Task<int> UpsertAsync(string collection, IEnumerable<Point> points, bool wait = true, CancellationToken cancellationToken = default)
    {
        var r = new UpsertRequest { Collection = collection, Wait = wait };
        r.Points.Add(points);
        return (int)(await Points.UpsertAsync(r, Options(cancellationToken)).ConfigureAwait(false)).Upserted;
    }

    /// <summary>Upserts one point.</summary>
    public Task<int> UpsertAsync(string collection, PointId id, ReadOnlyMemory<float> vector, IEnumerable<KeyValuePair<string, Value>>? payload = null,
        bool wait = true, CancellationToken cancellationToken = default) =>
        UpsertAsync(collection, [Point.Create(id, vector.Span, payload)], wait, cancellationToken);

    /// <summary>Deletes points by id; returns how many existed.</summary>
    public async Task<int> DeleteAsync(string collection, IEnumerable<PointId> ids, bool wait = true, CancellationToken cancellationToken = default)
    {
        var r = new DeletePointsRequest { Collection = collection, Wait = wait };
        r.Ids.Add(ids);
        return (int)(await Points.DeleteAsync(r, Options(cancellationToken)).ConfigureAwait(false)).Deleted;
    }

    /// <summary>Deletes every point matching <paramref name="filter"/>; returns how many.</summary>
    public async Task<int> DeleteByFilterAsync(string collection, Filter filter, bool wait = true, CancellationToken cancellationToken = default) =>
        (int)(await Points.DeleteAsync(new DeletePointsRequest { Collection = collection, Filter = filter, Wait = wait }, Options(cancellationToken))
            .ConfigureAwait(false)).Deleted;

    /// <summary>Points by id (missing ids are omitted).</summary>
    public async Task<IReadOnlyList<RetrievedPoint>> GetAsync(string collection, IEnumerable<PointId> ids, bool withVectors = true,
        bool withPayload = true, CancellationToken cancellationToken = default)
    {
        var r = new GetPointsRequest { Collection = collection, WithVectors = withVectors, WithPayload = withPayload };
        r.Ids.Add(ids);
        return (await Points.GetAsync(r, Options(cancellationToken)).ConfigureAwait(false)).Points;
    }

    /// <summary>Live points (matching <paramref name="filter"/> when given).</summary>
    public async Task<long> CountAsync(string collection, Filter? filter = null, CancellationToken cancellationToken = default) =>
        (long)(await Points.CountAsync(new CountRequest { Collection = collection, Filter = filter }, Options(cancellationToken)).ConfigureAwait(false)).Count;

    // ------------------------------------------------------------ search

    /// <summary>A search request for <paramref name="vector"/> (the rest of <see cref="SearchRequest"/> can be set on the result).</summary>
    public static SearchRequest Query(string collection, ReadOnlySpan<float> vector, int topK, Filter? filter = null, SearchParams? parameters = null,
        bool withPayload = false, bool withVectors = false, float? scoreThreshold = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        var r = new SearchRequest
        {
            Collection = collection, TopK = (uint)topK, Filter = filter, Params = parameters, WithPayload = withPayload, WithVectors = withVectors,
        };
        if (scoreThreshold is float t) r.ScoreThreshold = t;
        r.Vector.AddFloats(vector);
        return r;
    }

    /// <summary>The <paramref name="topK"/> nearest points to <paramref name="vector"/>, best first, with the server's stats.</summary>
    public Task<SearchResponse> SearchAsync(string collection, ReadOnlyMemory<float> vector, int topK, Filter? filter = null,
        SearchParams? parameters = null, bool withPayload = false, bool withVectors = false, float? scoreThreshold = null,
        CancellationToken cancellationToken = default) =>
        SearchAsync(Query(collection, vector.Span, topK, filter, parameters, withPayload, withVectors, scoreThreshold), cancellationToken);

    /// <summary>Runs a prepared <see cref="SearchRequest"/>.</summary>
    public async Task<SearchResponse> SearchAsync(SearchRequest request, CancellationToken cancellationToken = default) =>
        await SearchApi.SearchAsync(request, Options(cancellationToken)).ConfigureAwait(false);

    /// <summary>Several queries against one collection in one call.</summary>
    public async Task<SearchBatchResponse> SearchBatchAsync(string collection, IEnumerable<SearchRequest> searches, CancellationToken cancellationToken = default)
    {
        var r = new SearchBatchRequest { Collection = collection };
        r.Searches.Add(searches);
        return await SearchApi.SearchBatchAsync(r, Options(cancellationToken)).ConfigureAwait(false);
    }

    // ------------------------------------------------------------ admin

    /// <summary>Trains the collection's index; yields progress until it serves searches.</summary>
    public async IAsyncEnumerable<BuildIndexProgress> BuildIndexAsync(string collection, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var call = Admin.BuildIndex(new BuildIndexRequest { Collection = collection }, Options(cancellationToken));
        await foreach (var p in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            yield return p;
    }

    /// <summary>Checkpoints a collection now.</summary>
    public async Task<SnapshotResponse> SnapshotAsync(string collection, CancellationToken cancellationToken = default) =>
        await Admin.SnapshotAsync(new SnapshotRequest { Collection = collection }, Options(cancellationToken)).ConfigureAwait(false);

    /// <summary>Version, SIMD level, device and limits of the server.</summary>
    public async Task<ServerInfoResponse> ServerInfoAsync(CancellationToken cancellationToken = default) =>
        await Admin.ServerInfoAsync(new ServerInfoRequest(), Options(cancellationToken)).ConfigureAwait(false);

    /// <summary>grpc.health.v1 status of the server ("" = overall).</summary>
    public async Task<Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus> HealthAsync(string service = "", CancellationToken cancellationToken = default) =>
        (await Health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = service }, Options(cancellationToken)).ConfigureAwait(false)).Status;

    /// <inheritdoc/>
    public void Dispose() => _channel?.Dispose();
}
