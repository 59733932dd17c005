using Adanns.Client;
using Adanns.Embeddings;
using Adanns.Engine.Collections;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.VectorData;

namespace Adanns.VectorData;

/// <summary>Dependency-injection registrations for the Adanns vector store and the local MiniLM embedder.</summary>
public static class AdannsServiceCollectionExtensions
{
    /// <summary>
    /// Registers an <see cref="AdannsVectorStore"/> (as itself and as <see cref="VectorStore"/>) over an embedded
    /// database opened in <paramref name="directory"/> and closed with the container. A registered
    /// <see cref="IEmbeddingGenerator"/> becomes the store's default generator unless the options name one.
    /// </summary>
    public static IServiceCollection AddAdannsVectorStore(this IServiceCollection services, string directory, AdannsVectorStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        return services.AddStore(sp => AdannsVectorStore.Open(directory, WithGenerator(sp, options)));
    }

    /// <summary>Registers an <see cref="AdannsVectorStore"/> over the <see cref="AdannsDatabase"/> the container resolves.</summary>
    public static IServiceCollection AddAdannsVectorStore(this IServiceCollection services, AdannsVectorStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return services.AddStore(sp => new AdannsVectorStore(sp.GetRequiredService<AdannsDatabase>(), WithGenerator(sp, options)));
    }

    /// <summary>Registers an <see cref="AdannsVectorStore"/> over a server at <paramref name="address"/> (the client is owned by the store).</summary>
    public static IServiceCollection AddAdannsRemoteVectorStore(this IServiceCollection services, string address, string? apiKey = null,
        AdannsVectorStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(address);
        return services.AddStore(sp => AdannsVectorStore.Connect(address, apiKey, WithGenerator(sp, options)));
    }

    /// <summary>Registers an <see cref="AdannsVectorStore"/> over the <see cref="AdannsClient"/> the container resolves.</summary>
    public static IServiceCollection AddAdannsRemoteVectorStore(this IServiceCollection services, AdannsVectorStoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return services.AddStore(sp => new AdannsVectorStore(sp.GetRequiredService<AdannsClient>(), WithGenerator(sp, options)));
    }

    /// <summary>
    /// Registers the collection <paramref name="name"/> of the registered <see cref="AdannsVectorStore"/> as
    /// <see cref="VectorStoreCollection{TKey, TRecord}"/>.
    /// </summary>
    public static IServiceCollection AddAdannsCollection<TKey, TRecord>(this IServiceCollection services, string name, AdannsCollectionOptions? options = null)
        where TKey : notnull
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(name);
        services.AddSingleton(sp => sp.GetRequiredService<AdannsVectorStore>().GetCollection<TKey, TRecord>(name, options ?? new AdannsCollectionOptions()));
        services.AddSingleton<VectorStoreCollection<TKey, TRecord>>(sp => sp.GetRequiredService<AdannsCollection<TKey, TRecord>>());
        return services;
    }

    /// <summary>
    /// Registers the local all-MiniLM-L6-v2 generator as <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of
    /// string → Embedding&lt;float&gt; (and <see cref="IEmbeddingGenerator"/>), one instance for the container.
    /// </summary>
    public static IServiceCollection AddMiniLmEmbeddingGenerator(this IServiceCollection services, MiniLmOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(_ => new MiniLmEmbeddingGenerator(options));
        services.TryAddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(sp => sp.GetRequiredService<MiniLmEmbeddingGenerator>());
        services.TryAddSingleton<IEmbeddingGenerator>(sp => sp.GetRequiredService<MiniLmEmbeddingGenerator>());
        return services;
    }

    private static IServiceCollection AddStore(this IServiceCollection services, Func<IServiceProvider, AdannsVectorStore> factory)
    {
        services.AddSingleton(factory);
        services.AddSingleton<VectorStore>(sp => sp.GetRequiredService<AdannsVectorStore>());
        return services;
    }

    private static AdannsVectorStoreOptions WithGenerator(IServiceProvider sp, AdannsVectorStoreOptions? options)
    {
        options ??= new AdannsVectorStoreOptions();
        if (options.EmbeddingGenerator is not null) return options;
        var generator = sp.GetService<IEmbeddingGenerator>() ?? sp.GetService<IEmbeddingGenerator<string, Embedding<float>>>();
        return generator is null ? options : options with { EmbeddingGenerator = generator };
    }
}
