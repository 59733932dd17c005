using System.Diagnostics.Metrics;
using Adanns.Engine.Collections;
using Adanns.Engine.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the embedded AdannsDotNet database.</summary>
public static class AdannsServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="AdannsDatabase"/> (also as <see cref="IAdannsDatabase"/>), opened on first use from
    /// <see cref="AdannsOptions"/> with the container's <see cref="ILoggerFactory"/> and <see cref="IMeterFactory"/>,
    /// and closed (asynchronously, checkpointing every collection) when the container is disposed. Options are
    /// validated on first use and, under a host, at start.
    /// </summary>
    public static IServiceCollection AddAdanns(this IServiceCollection services, Action<AdannsOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<AdannsOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AdannsOptions>, AdannsOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<AdannsOptions>>().Value;
            return AdannsDatabase.Open(o.DataDirectory, o.ToDatabaseOptions(sp.GetService<ILoggerFactory>(), sp.GetService<IMeterFactory>()));
        });
        services.TryAddSingleton<IAdannsDatabase>(sp => sp.GetRequiredService<AdannsDatabase>());
        return services;
    }
}
