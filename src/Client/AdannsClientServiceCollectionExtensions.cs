using Adanns.Client;
using Adanns.Engine.Collections;
using Adanns.Protocol.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="AdannsClient"/> on Grpc.Net.ClientFactory.</summary>
public static class AdannsClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers the adanns.v1 generated clients with Grpc.Net.ClientFactory (address, message limits, TLS trust and
    /// the <c>api-key</c> header from <see cref="AdannsClientOptions"/>), and one <see cref="AdannsClient"/> over them,
    /// also as <see cref="IAdannsDatabase"/>. Options are validated on first use (the address must be absolute http
    /// or https; limits positive).
    /// </summary>
    public static IServiceCollection AddAdannsClient(this IServiceCollection services, Action<AdannsClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<AdannsClientOptions>().Configure(configure)
            .Validate(o => o.Address is { IsAbsoluteUri: true } a && (a.Scheme == Uri.UriSchemeHttp || a.Scheme == Uri.UriSchemeHttps),
                "AdannsClient: Address must be an absolute http:// or https:// URI, e.g. http://127.0.0.1:50051.")
            .Validate(o => o.MaxMessageBytes > 0, "AdannsClient: MaxMessageBytes must be positive.")
            .Validate(o => o.DefaultTimeout is null || o.DefaultTimeout > TimeSpan.Zero, "AdannsClient: DefaultTimeout must be positive when set.");
        Add<Collections.CollectionsClient>(services);
        Add<Points.PointsClient>(services);
        Add<Search.SearchClient>(services);
        Add<Admin.AdminClient>(services);
        Add<Grpc.Health.V1.Health.HealthClient>(services);
        services.TryAddSingleton(sp => new AdannsClient(
            sp.GetRequiredService<Collections.CollectionsClient>(), sp.GetRequiredService<Points.PointsClient>(),
            sp.GetRequiredService<Search.SearchClient>(), sp.GetRequiredService<Admin.AdminClient>(),
            sp.GetRequiredService<Grpc.Health.V1.Health.HealthClient>(), sp.GetRequiredService<IOptions<AdannsClientOptions>>().Value.DefaultTimeout));
        services.TryAddSingleton<IAdannsDatabase>(sp => sp.GetRequiredService<AdannsClient>());
        return services;
    }

    private static void Add<TClient>(IServiceCollection services) where TClient : class
    {
        services.AddGrpcClient<TClient>((sp, o) =>
            {
                var options = sp.GetRequiredService<IOptions<AdannsClientOptions>>().Value;
                o.Address = options.Address;
                o.ChannelOptionsActions.Add(c =>
                {
                    c.MaxReceiveMessageSize = options.MaxMessageBytes;
                    c.MaxSendMessageSize = options.MaxMessageBytes;
                });
            })
            .ConfigurePrimaryHttpMessageHandler(sp =>
            {
                var options = sp.GetRequiredService<IOptions<AdannsClientOptions>>().Value;
                return options.HttpHandler ?? AdannsClient.CreateHandler(options);
            })
            .AddInterceptor(sp => new ApiKeyInterceptor(sp.GetRequiredService<IOptions<AdannsClientOptions>>().Value.ApiKey));
    }

    /// <summary>Adds the <c>api-key</c> header to every call (nothing when no key is configured).</summary>
    private sealed class ApiKeyInterceptor(string? key) : Interceptor
    {
        private Metadata Headers(Metadata? headers)
        {
            headers ??= [];
            if (!string.IsNullOrEmpty(key)) headers.Add("api-key", key);
            return headers;
        }

        private ClientInterceptorContext<TReq, TRes> With<TReq, TRes>(ClientInterceptorContext<TReq, TRes> c) where TReq : class where TRes : class =>
            new(c.Method, c.Host, c.Options.WithHeaders(Headers(c.Options.Headers)));

        public override AsyncUnaryCall<TRes> AsyncUnaryCall<TReq, TRes>(TReq request, ClientInterceptorContext<TReq, TRes> context,
            AsyncUnaryCallContinuation<TReq, TRes> continuation) => continuation(request, With(context));

        public override AsyncServerStreamingCall<TRes> AsyncServerStreamingCall<TReq, TRes>(TReq request, ClientInterceptorContext<TReq, TRes> context,
            AsyncServerStreamingCallContinuation<TReq, TRes> continuation) => continuation(request, With(context));

        public override AsyncClientStreamingCall<TReq, TRes> AsyncClientStreamingCall<TReq, TRes>(ClientInterceptorContext<TReq, TRes> context,
            AsyncClientStreamingCallContinuation<TReq, TRes> continuation) => continuation(With(context));

        public override AsyncDuplexStreamingCall<TReq, TRes> AsyncDuplexStreamingCall<TReq, TRes>(ClientInterceptorContext<TReq, TRes> context,
            AsyncDuplexStreamingCallContinuation<TReq, TRes> continuation) => continuation(With(context));

        public override TRes BlockingUnaryCall<TReq, TRes>(TReq request, ClientInterceptorContext<TReq, TRes> context,
            BlockingUnaryCallContinuation<TReq, TRes> continuation) => continuation(request, With(context));
    }
}
