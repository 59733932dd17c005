using Adanns.Engine;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Adanns.Server.Tests;

/// <summary>
/// Error mapping by type only (issue 20), through the server's interceptor: an engine error keeps its code and message;
/// any other exception — an argument exception thrown inside the engine (a kernel precondition) included — is INTERNAL
/// with a correlation id that the trailer, the message and the server's log line share, and no exception text leaks.
/// Runs alone: its <see cref="ServerMetrics"/> creates and disposes an "Adanns.Server" meter, which empties the shared
/// server's scrape if it happens meanwhile (see <see cref="LifecycleCollection"/>).
/// </summary>
[Collection(LifecycleCollection.Name)]
public sealed class ErrorMappingTests
{
    private const string Method = "/adanns.v1.Search/Search";

    private static (ApiInterceptor Interceptor, ListLogger Log, ServiceProvider Services) Create()
    {
        var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var options = Options.Create(new AdannsServerOptions());
        var host = new DatabaseHost(options, NullLogger<DatabaseHost>.Instance, NullLoggerFactory.Instance, meters);
        var log = new ListLogger();
        return (new ApiInterceptor(options, new ServerMetrics(meters, host, options), log), log, services);
    }

    private static Task<RpcException> Call(ApiInterceptor interceptor, Exception thrown) =>
        Assert.ThrowsAsync<RpcException>(() => interceptor.UnaryServerHandler<string, string>("request", new Context(Method), (_, _) => throw thrown));

    [Theory]
    [InlineData("argument")]
    [InlineData("invalid-operation")]
    [InlineData("null-reference")]
    public async Task AnythingButAnEngineError_IsInternalWithACorrelationIdInTrailerMessageAndLog(string kind)
    {
        Exception thrown = kind switch
        {
            "argument" => new ArgumentOutOfRangeException("p", 9, "nprobe must be in [1, 8] (got 9)."), // a precondition deep in an index
            "invalid-operation" => new InvalidOperationException("secret internal state"),
            _ => new NullReferenceException("secret internal state"),
        };
        var (interceptor, log, services) = Create();
        using (services)
        {
            var e = await Call(interceptor, thrown);
            Assert.Equal(StatusCode.Internal, e.StatusCode);
            string? id = e.Trailers.GetValue(ApiInterceptor.CorrelationTrailerKey);
            Assert.NotNull(id);
            Assert.Matches("^[0-9a-f]{16}$", id);
            Assert.Contains(id, e.Status.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain("secret", e.Status.Detail, StringComparison.Ordinal);
            Assert.DoesNotContain("nprobe", e.Status.Detail, StringComparison.Ordinal);
            Assert.Null(e.Trailers.GetValue(AdannsException.TrailerKey));
            var line = Assert.Single(log.Lines, l => l.Level == LogLevel.Error);
            Assert.Contains(id, line.Message, StringComparison.Ordinal);
            Assert.Same(thrown, line.Exception);
        }
    }

    [Theory]
    [InlineData(AdannsErrorCode.InvalidQuery, StatusCode.InvalidArgument)]
    [InlineData(AdannsErrorCode.CollectionFaulted, StatusCode.FailedPrecondition)]
    [InlineData(AdannsErrorCode.Overloaded, StatusCode.Unavailable)]
    [InlineData(AdannsErrorCode.ResourceExhausted, StatusCode.ResourceExhausted)]
    public async Task AnEngineError_KeepsItsCodeAndMessage(AdannsErrorCode code, StatusCode status)
    {
        var (interceptor, log, services) = Create();
        using (services)
        {
            var e = await Call(interceptor, new AdannsException(code, "Collection \"c\": what was wrong."));
            Assert.Equal(status, e.StatusCode);
            Assert.Equal("Collection \"c\": what was wrong.", e.Status.Detail);
            Assert.Equal(code.ToString(), e.Trailers.GetValue(AdannsException.TrailerKey));
            Assert.Null(e.Trailers.GetValue(ApiInterceptor.CorrelationTrailerKey));
            Assert.DoesNotContain(log.Lines, l => l.Level >= LogLevel.Error);
        }
    }

    private sealed class ListLogger : ILogger<ApiInterceptor>
    {
        public List<(LogLevel Level, string Message, Exception? Exception)> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines) Lines.Add((logLevel, formatter(state, exception), exception));
        }
    }

    /// <summary>A server call context for the interceptor alone (no network).</summary>
    private sealed class Context(string method) : ServerCallContext
    {
        private readonly Metadata _trailers = [];

        protected override string MethodCore => method;
        protected override string HostCore => "127.0.0.1";
        protected override string PeerCore => "ipv4:127.0.0.1:1";
        protected override DateTime DeadlineCore => DateTime.MaxValue;
        protected override Metadata RequestHeadersCore { get; } = [];
        protected override CancellationToken CancellationTokenCore => CancellationToken.None;
        protected override Metadata ResponseTrailersCore => _trailers;
        protected override Status StatusCore { get; set; }
        protected override WriteOptions? WriteOptionsCore { get; set; }
        protected override AuthContext AuthContextCore => new(null, []);

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
