using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Adanns.Engine;
using Adanns.Protocol.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;

namespace Adanns.Server;

/// <summary>
/// Runs around every RPC (all four call kinds through <see cref="Guarded"/>): checks the <c>api-key</c> header (read-write or read-only key), maps engine and argument
/// errors to gRPC status codes with their message, and records metrics. Health checks need no key.
/// </summary>
public sealed class ApiInterceptor(IOptions<AdannsServerOptions> options, ServerMetrics metrics, ILogger<ApiInterceptor> logger) : Interceptor
{
    /// <summary>Metadata header carrying the API key.</summary>
    public const string ApiKeyHeader = "api-key";

    private readonly byte[]? _readWrite = KeyBytes(options.Value.Auth.ReadWriteKey);
    private readonly byte[]? _readOnly = KeyBytes(options.Value.Auth.ReadOnlyKey);

    /// <summary>Methods that change data; the read-only key may not call them.</summary>
    internal static readonly HashSet<string> WriteMethods = new(StringComparer.Ordinal)
    {
        "/adanns.v1.Collections/Create",
        "/adanns.v1.Collections/Delete",
        "/adanns.v1.Points/Upsert",
        "/adanns.v1.Points/Delete",
        "/adanns.v1.Admin/BuildIndex",
        "/adanns.v1.Admin/Snapshot",
    };

    private static byte[]? KeyBytes(string? key) => string.IsNullOrEmpty(key) ? null : Encoding.UTF8.GetBytes(key);

    /// <inheritdoc/>
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        TResponse response = default!;
        await Guarded(context, async () => response = await continuation(request, context).ConfigureAwait(false)).ConfigureAwait(false);
        return response;
    }

    /// <inheritdoc/>
    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        Guarded(context, () => continuation(request, responseStream, context));

    /// <summary>One call: authorize, run, map a failure to its status, record the call's metrics either way.</summary>
    private async Task Guarded(ServerCallContext context, Func<Task> call)
    {
        long start = Stopwatch.GetTimestamp();
        var code = StatusCode.OK;
        try
        {
            Authorize(context);
            await call().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var rpc = Truncate(Map(e, context));
            code = rpc.StatusCode;
            throw rpc;
        }
        finally
        {
            metrics.RecordCall(context.Method, code, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }

    /// <inheritdoc/>
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        TResponse response = default!;
        await Guarded(context, async () => response = await continuation(requestStream, context).ConfigureAwait(false)).ConfigureAwait(false);
        return response;
    }

    /// <inheritdoc/>
    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        Guarded(context, () => continuation(requestStream, responseStream, context));

    private void Authorize(ServerCallContext context)
    {
        if (_readWrite is null && _readOnly is null) return;
        if (context.Method.StartsWith("/grpc.health.v1.Health/", StringComparison.Ordinal)) return;
        string? key = context.RequestHeaders.GetValue(ApiKeyHeader);
        if (string.IsNullOrEmpty(key))
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"Missing API key: send it in the \"{ApiKeyHeader}\" metadata header."));
        var given = Encoding.UTF8.GetBytes(key);
        if (_readWrite is not null && CryptographicOperations.FixedTimeEquals(given, _readWrite)) return;
        if (_readOnly is not null && CryptographicOperations.FixedTimeEquals(given, _readOnly))
        {
            if (WriteMethods.Contains(context.Method))
                throw new RpcException(new Status(StatusCode.PermissionDenied, $"The read-only API key may not call {context.Method}."));
            return;
        }
        throw new RpcException(new Status(StatusCode.Unauthenticated, "Unknown API key."));
    }

    /// <summary>Longest status message sent (messages quote client input, which must not blow the 64 KB header limit).</summary>
    internal const int MaxDetailChars = 1024;

    private static RpcException Truncate(RpcException e) =>
        e.Status.Detail is { Length: > MaxDetailChars } d ? new RpcException(new Status(e.StatusCode, Clip(d)), e.Trailers) : e;

    private static string Clip(string message) => message.Length > MaxDetailChars ? message[..MaxDetailChars] + "… (truncated)" : message;

    /// <summary>Trailer carrying the correlation id of an <c>INTERNAL</c> error (also in the server log line).</summary>
    public const string CorrelationTrailerKey = "adanns-correlation-id";

    /// <summary>
    /// Maps by type only: <see cref="RpcException"/> (the server's own checks) and <see cref="AdannsException"/>
    /// (engine errors, with their code in status details and the <c>adanns-error-code</c> trailer) keep their message; a cancelled call is
    /// Cancelled / DeadlineExceeded; anything else is a bug or an environment failure: INTERNAL with a correlation id
    /// that the log line carries too (the exception text stays in the log).
    /// </summary>
    private RpcException Map(Exception e, ServerCallContext context)
    {
        switch (e)
        {
            case RpcException rpc:
                return rpc;
            case AdannsException a:
            {
                // The code travels twice: in rich status details (google.rpc.Status + ErrorInfo, the standard
                // grpc-status-details-bin trailer) and in the older adanns-error-code trailer, kept for existing clients.
                var status = ToStatus(a.Code);
                string message = Clip(a.Message);
                var trailers = new Metadata { { AdannsException.TrailerKey, a.Code.ToString() } };
                if (a.RecordIndex is int i) trailers.Add(AdannsException.RecordIndexTrailerKey, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                ErrorDetails.Add(trailers, status, message, a.Code.ToString(), a.RecordIndex);
                return new RpcException(new Status(status, message), trailers);
            }
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                return new RpcException(new Status(context.Deadline <= DateTime.UtcNow ? StatusCode.DeadlineExceeded : StatusCode.Cancelled,
                    "The call was cancelled or its deadline passed."));
            default:
            {
                string id = Guid.NewGuid().ToString("N")[..16];
                logger.LogError(e, "Internal error {CorrelationId} in {Method}", id, context.Method);
                return new RpcException(new Status(StatusCode.Internal, $"Internal error (correlation id {id}); see the server log."),
                    new Metadata { { CorrelationTrailerKey, id } });
            }
        }
    }

    /// <summary>The gRPC status of an engine error.</summary>
    public static StatusCode ToStatus(AdannsErrorCode code) => code switch
    {
        AdannsErrorCode.CollectionNotFound => StatusCode.NotFound,
        AdannsErrorCode.CollectionExists => StatusCode.AlreadyExists,
        AdannsErrorCode.CollectionQuarantined or AdannsErrorCode.CollectionFaulted => StatusCode.FailedPrecondition, // retrying cannot help
        AdannsErrorCode.Closed => StatusCode.Unavailable,
        AdannsErrorCode.Corrupt => StatusCode.DataLoss,
        AdannsErrorCode.ResourceExhausted => StatusCode.ResourceExhausted,
        AdannsErrorCode.Unavailable => StatusCode.Unavailable,
        AdannsErrorCode.Overloaded => StatusCode.Unavailable, // backpressure: nothing written, retrying later helps
        AdannsErrorCode.Unauthenticated => StatusCode.Unauthenticated,
        AdannsErrorCode.PermissionDenied => StatusCode.PermissionDenied,
        AdannsErrorCode.DeadlineExceeded => StatusCode.DeadlineExceeded,
        AdannsErrorCode.Internal => StatusCode.Internal,
        _ => StatusCode.InvalidArgument, // dimension, NaN, empty vector, duplicate/invalid id, payload, batch, configuration, query, argument
    };
}
