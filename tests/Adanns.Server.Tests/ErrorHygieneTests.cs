using System.Net;
using System.Net.Http.Headers;
using Adanns.Engine;
using Adanns.Protocol.V1;
using Grpc.Core;
using static Adanns.Server.Tests.Helpers;
using Metric = Adanns.Protocol.V1.Metric;

namespace Adanns.Server.Tests;

/// <summary>
/// What a client sees for bad input: one-line messages that name the field and the allowed range (no .NET
/// "(Parameter 'p')" or "Actual value was" text), the engine's error code in the <c>adanns-error-code</c> trailer and in status details,
/// and proper statuses for frames the gRPC layer itself rejects.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class ErrorHygieneTests(ServerFixture server)
{
    private static void AssertClean(RpcException e, string code)
    {
        Assert.DoesNotContain('\n', e.Status.Detail);
        Assert.DoesNotContain("(Parameter '", e.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("Actual value", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(code, e.Trailers.GetValue(AdannsException.TrailerKey));
        // The same code in rich status details: grpc-status-details-bin = google.rpc.Status { code, message, [ErrorInfo] }.
        Assert.NotNull(e.Trailers.Get(StatusDetailsTrailer));
        var status = e.GetRpcStatus();
        Assert.NotNull(status);
        Assert.Equal((int)e.StatusCode, status.Code);
        Assert.Equal(e.Status.Detail, status.Message);
        var info = status.GetDetail<Google.Rpc.ErrorInfo>();
        Assert.NotNull(info);
        Assert.Equal(code, info.Reason);
        Assert.Equal(ErrorDetails.Domain, info.Domain);
        Assert.Equal(e.Trailers.GetValue(AdannsException.RecordIndexTrailerKey), info.Metadata.TryGetValue(ErrorDetails.RecordIndexKey, out var at) ? at : null);
    }

    private const string StatusDetailsTrailer = "grpc-status-details-bin";

    /// <summary>The error as a client that never reads the adanns-* trailers receives it: only status and status details.</summary>
    private static RpcException WithoutAdannsTrailers(RpcException e)
    {
        var kept = new Metadata();
        foreach (var entry in e.Trailers)
            if (!entry.Key.StartsWith("adanns-", StringComparison.Ordinal))
                kept.Add(entry);
        return new RpcException(e.Status, kept);
    }

    private static SearchParams P(Action<SearchParams> set)
    {
        var p = new SearchParams();
        set(p);
        return p;
    }

    [Fact]
    public async Task IvfSearchParameterErrorsAreOneLineAndNameTheRange()
    {
        // The demo collection: D = 32, IVF16 with 16-dim centroids.
        var q = new float[32];
        q[0] = 1;
        (SearchParams p, string part)[] cases =
        [
            (P(p => p.Nprobe = 17), "nprobe must be in [1, 16] (got 17)"),
            (P(p => p.CoarseDim = 33), "[1, 32] (got 33)"),
            (P(p => p.ScanDim = 33), "[1, 32] (got 33)"),
            (P(p => p.Rerank.Add(new RerankStage { Dim = 40 })), "Rerank dim must be in [1, 32] (got 40)"),
            (P(p => p.Shortlist = 3), "Shortlist (3) must be at least k (10)"),
        ];
        foreach (var (p, part) in cases)
        {
            var e = await Status(StatusCode.InvalidArgument, () => server.Client.SearchAsync("demo", q, 10, parameters: p), part);
            AssertClean(e, nameof(AdannsErrorCode.InvalidQuery));
        }
        // The same inside a batch names the query's position.
        var batch = await Status(StatusCode.InvalidArgument, () => server.Client.SearchBatchAsync("demo",
            [new SearchRequest { Collection = "demo", TopK = 5, Vector = { q } }, new SearchRequest { Collection = "demo", TopK = 5, Vector = { q }, Params = P(p => p.Nprobe = 99) }]),
            "searches[1]: ");
        AssertClean(batch, nameof(AdannsErrorCode.InvalidQuery));
    }

    [Fact]
    public async Task PqSearchParameterErrorsAreOneLine()
    {
        var c = server.Client;
        string name = UniqueName("pqerr");
        const int D = 16;
        await c.CreateCollectionAsync(name, D, Metric.L2, "IVF8@8,PQ4@16,Rerank16", trainThreshold: 400);
        var vectors = Vectors(600, D, seed: 3);
        await c.UpsertAsync(name, Points(vectors[..300]));
        await c.UpsertAsync(name, Points(vectors[300..], 300));
        await foreach (var _ in c.BuildIndexAsync(name)) { }
        Assert.True((await c.GetCollectionAsync(name)).IndexTrained);
        var q = Vectors(1, D, seed: 4)[0];
        (SearchParams p, string part)[] cases =
        [
            (P(p => p.Nprobe = 9), "nprobe must be in [1, 8] (got 9)"),
            (P(p => p.CoarseDim = 17), "Coarse dim must be in [1, 16]"), // above d_c = 8 the lists' running means rank
            (P(p => p.ScanDim = 8), "the scan dim cannot be changed (got 8)"),
            // PQ indexes take budgets like every index; one that also names a knob the budget picks is refused.
            (P(p => { p.MaxFlops = 1e6; p.Nprobe = 2; }), "leave those null"),
            (P(p => p.Rerank.Add(new RerankStage { Dim = 17 })), "Rerank dim must be in [1, 16] (got 17)"),
        ];
        foreach (var (p, part) in cases)
        {
            var e = await Status(StatusCode.InvalidArgument, () => c.SearchAsync(name, q, 10, parameters: p), part);
            AssertClean(e, nameof(AdannsErrorCode.InvalidQuery));
        }
        await c.DeleteCollectionAsync(name);
    }

    [Fact]
    public async Task InputErrorsCarryTheirCode()
    {
        var c = server.Client;
        var e = await Status(StatusCode.InvalidArgument, () => c.UpsertAsync("demo", 1UL, new float[5]), "32-dim");
        AssertClean(e, nameof(AdannsErrorCode.WrongDimension));
        Assert.Equal("0", e.Trailers.GetValue(AdannsException.RecordIndexTrailerKey));
        // Status details alone are enough for the typed exception, record index included.
        var typed = Assert.IsType<AdannsException>(Adanns.Client.RemoteConvert.ToException(WithoutAdannsTrailers(e), default));
        Assert.Equal(AdannsErrorCode.WrongDimension, typed.Code);
        Assert.Equal(0, typed.RecordIndex);
        Assert.Equal(e.Status.Detail, typed.Message);
        var nf = await Status(StatusCode.NotFound, () => c.CountAsync("no-such"), "no-such");
        AssertClean(nf, nameof(AdannsErrorCode.CollectionNotFound));
        var stripped = WithoutAdannsTrailers(nf);
        Assert.Null(stripped.Trailers.GetValue(AdannsException.TrailerKey));
        var notFound = Assert.IsType<AdannsException>(Adanns.Client.RemoteConvert.ToException(stripped, default));
        Assert.Equal(AdannsErrorCode.CollectionNotFound, notFound.Code);
        Assert.Null(notFound.RecordIndex);
        var top = await Status(StatusCode.InvalidArgument, () => c.SearchAsync("demo", new float[32], 0), "top_k must be in [1, 200]");
        AssertClean(top, nameof(AdannsErrorCode.InvalidArgument));
        // Details win over the old trailer: a trailer naming another code does not change the typed code.
        var conflicting = WithoutAdannsTrailers(top).Trailers;
        conflicting.Add(AdannsException.TrailerKey, nameof(AdannsErrorCode.Corrupt));
        var both = new RpcException(top.Status, conflicting);
        Assert.Equal(AdannsErrorCode.InvalidArgument, Assert.IsType<AdannsException>(Adanns.Client.RemoteConvert.ToException(both, default)).Code);
        var filter = await Status(StatusCode.InvalidArgument,
            () => c.SearchAsync("demo", new float[32], 5, filter: new Filter { In = new FieldIn { Field = "x" } }), "filter: In needs at least one value");
        AssertClean(filter, nameof(AdannsErrorCode.InvalidArgument));
    }

    // ------------------------------------------------------------ raw frames (what a broken or hostile client can send)

    private async Task<(StatusCode Code, string Message)> RawCall(string method, byte[] frame)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"{server.Address}{method}"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.Add("api-key", ServerFixture.ReadWriteKey);
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        string? status = Header(response, "grpc-status");
        Assert.NotNull(status);
        return ((StatusCode)int.Parse(status, System.Globalization.CultureInfo.InvariantCulture), Uri.UnescapeDataString(Header(response, "grpc-message") ?? ""));
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.TrailingHeaders.TryGetValues(name, out var t) ? t.First() : r.Headers.TryGetValues(name, out var h) ? h.First() : null;

    private static byte[] Frame(byte[] message, uint? declared = null)
    {
        var f = new byte[5 + message.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(1), declared ?? (uint)message.Length);
        message.CopyTo(f, 5);
        return f;
    }

    [Fact]
    public async Task InvalidUtf8IsInvalidArgumentNamingTheField()
    {
        // GetCollectionRequest { name = 0xC3 0x28 } (a two-byte sequence cut short).
        var (code, message) = await RawCall("/adanns.v1.Collections/Get", Frame([0x0A, 0x02, 0xC3, 0x28]));
        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("name is not valid UTF-8", message, StringComparison.Ordinal);
        // GetPointsRequest { collection = "demo", ids = [ PointId { str = 0xFF } ] }.
        (code, message) = await RawCall("/adanns.v1.Points/Get", Frame([0x0A, 0x04, (byte)'d', (byte)'e', (byte)'m', (byte)'o', 0x12, 0x03, 0x12, 0x01, 0xFF]));
        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("ids: field str is not valid UTF-8", message, StringComparison.Ordinal);
        // A truncated field is a malformed message, not a server failure.
        (code, message) = await RawCall("/adanns.v1.Collections/Get", Frame([0x0A, 0x09, 0x41]));
        Assert.Equal(StatusCode.InvalidArgument, code);
        Assert.Contains("truncated", message, StringComparison.Ordinal);
        // A well-formed raw request still works (the guard passes it through unchanged).
        (code, _) = await RawCall("/adanns.v1.Collections/Get", Frame([0x0A, 0x04, (byte)'d', (byte)'e', (byte)'m', (byte)'o']));
        Assert.Equal(StatusCode.OK, code);
    }

    [Theory]
    [InlineData(uint.MaxValue)]               // 4 GiB: above int.MaxValue, where gRPC's own check throws IOException
    [InlineData(ServerFixture.MaxMessageBytes + 1u)]
    public async Task OversizedDeclaredFrameIsResourceExhausted(uint declared)
    {
        var (code, message) = await RawCall("/adanns.v1.Points/Upsert", Frame([0x0A, 0x01, 0x61], declared));
        Assert.Equal(StatusCode.ResourceExhausted, code);
        Assert.Contains($"declares {declared} bytes", message, StringComparison.Ordinal);
        // The server is unharmed.
        Assert.Equal(3000, await server.Client.CountAsync("demo"));
    }

    [Fact]
    public async Task MetricsNeedAKeyWhenKeysAreConfigured()
    {
        using var http = new HttpClient();
        var uri = new Uri($"http://127.0.0.1:{server.HttpPort}/metrics");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(uri)).StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, uri);
        wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-key");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
        using var bearer = new HttpRequestMessage(HttpMethod.Get, uri);
        bearer.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ServerFixture.ReadOnlyKey);
        var ok = await http.SendAsync(bearer);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Contains("collection=\"demo\"", await ok.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // Health needs no key.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri($"http://127.0.0.1:{server.HttpPort}/healthz"))).StatusCode);
    }
}
