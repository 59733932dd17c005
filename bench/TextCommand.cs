using System.Diagnostics;
using System.Globalization;
using Adanns.Client;
using Adanns.Embeddings;
using Adanns.Engine.IO;
using Adanns.Protocol.V1;

namespace Adanns.Bench;

/// <summary>
/// <c>text</c>: the text path measured. <c>text embed</c> times the local MiniLM generator (sentences/s at each thread
/// count, one batch size); <c>text ingest</c> sends a TSV's texts through gRPC to a collection with embedder "minilm"
/// (the server embeds), then measures recall@k of text queries against a ground-truth file, beside the same search with
/// the query vectors of the data set.
/// </summary>
internal static class TextCommand
{
    public const string Help = """
        Usage: dotnet run -c Release --project bench -- text embed --tsv FILE [--count 2000] [--threads 1,2] [--batch 32]
               dotnet run -c Release --project bench -- text ingest --data DIR [--address URL [--api-key KEY] | --self-host]
                   [--batch 256] [--limit N] [--spec IVF256] [--nprobe 32] [--k 10] [--server-threads 2] [--recall-base-vectors]
        embed: embeds the second column of the first --count lines of --tsv (after a warm-up batch) once per thread count.
        ingest: DIR holds base.tsv and query.tsv (name <TAB> text), minilm_groundtruth.ivecs and minilm_query.fvecs
        (debian-minilm). Upserts base.tsv's texts (point id = line number) in --batch points per request, waits for
        the index, then searches query.tsv's texts and, for comparison, minilm_query.fvecs's vectors, indexed (--nprobe)
        and exact; prints vectors/s and recall@k for each. --limit N times the ingest of the first N texts only; with
        --recall-base-vectors the recall is then measured on a second collection (also embedder minilm) holding all of
        minilm_base.fvecs as vectors, so text queries are embedded on the server and searched against the full base.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h")
        {
            Console.WriteLine(Help);
            return 0;
        }
        return args[0] switch
        {
            "embed" => Embed(args[1..]),
            "ingest" => await IngestAsync(args[1..]).ConfigureAwait(false),
            _ => throw new ArgumentException($"Unknown text command {args[0]}.\n{Help}"),
        };
    }

    private static Dictionary<string, string> Options(string[] args, params string[] flags)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            if (flags.Contains(args[i]))
            {
                d[args[i]] = "true";
                continue;
            }
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"Option {args[i]} needs a value.\n{Help}");
            d[args[i]] = args[++i];
        }
        return d;
    }

    private static int Int(Dictionary<string, string> o, string key, int fallback, int min = 1) =>
        !o.TryGetValue(key, out var s) ? fallback
        : int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min ? v
        : throw new ArgumentException($"Option {key} needs an integer ≥ {min} (got {s}).");

    private static string[] ReadTexts(string path, int limit) =>
        File.ReadLines(path).Where(l => l.Length > 0).Take(limit).Select(l =>
        {
            int tab = l.IndexOf('\t');
            return tab < 0 ? l : l[(tab + 1)..];
        }).ToArray();

    private static int Embed(string[] args)
    {
        var o = Options(args);
        string tsv = o.TryGetValue("--tsv", out var t) ? t : throw new ArgumentException("text embed needs --tsv FILE.");
        int count = Int(o, "--count", 2000), batch = Int(o, "--batch", 32);
        var threads = (o.TryGetValue("--threads", out var th) ? th : "1,2").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var texts = ReadTexts(tsv, count);
        Console.WriteLine($"embed: {texts.Length} sentences of {tsv}, batch {batch}, mean {texts.Average(s => s.Length):F0} characters");
        foreach (int n in threads)
        {
            using var g = new MiniLmEmbeddingGenerator(new MiniLmOptions { Threads = n, BatchSize = batch });
            var output = new float[texts.Length * MiniLmEmbeddingGenerator.Dimension];
            g.Embed(texts[..Math.Min(texts.Length, 4 * batch)], output); // warm-up
            long start = Stopwatch.GetTimestamp();
            long tokens = g.Embed(texts, output);
            double s = Stopwatch.GetElapsedTime(start).TotalSeconds;
            Console.WriteLine(FormattableString.Invariant(
                $"threads {n}: {texts.Length / s:F1} sentences/s ({tokens / s:F0} tokens/s, {tokens / (double)texts.Length:F1} tokens per sentence, {s:F2} s)"));
        }
        return 0;
    }

    private static async Task<int> IngestAsync(string[] args)
    {
        var o = Options(args, "--self-host", "--recall-base-vectors");
        string dir = o.TryGetValue("--data", out var d) ? d : throw new ArgumentException("text ingest needs --data DIR.");
        int batch = Int(o, "--batch", 256), k = Int(o, "--k", 10), nprobe = Int(o, "--nprobe", 32), limit = Int(o, "--limit", int.MaxValue);
        string spec = o.TryGetValue("--spec", out var sp) ? sp : "IVF256";
        bool selfHost = o.ContainsKey("--self-host");
        if (selfHost == o.ContainsKey("--address")) throw new ArgumentException("Give exactly one of --address and --self-host.");

        var baseTexts = ReadTexts(Path.Combine(dir, "base.tsv"), limit);
        var queryTexts = ReadTexts(Path.Combine(dir, "query.tsv"), int.MaxValue);
        var gt = VectorFile.ReadInts(Path.Combine(dir, "minilm_groundtruth.ivecs"));
        using var queryVectors = VectorFile.ReadVectors(Path.Combine(dir, "minilm_query.fvecs"));
        if (gt.Rows != queryTexts.Length || queryVectors.Count != queryTexts.Length)
            throw new ArgumentException($"query.tsv has {queryTexts.Length} lines, the ground truth {gt.Rows} rows, minilm_query.fvecs {queryVectors.Count}.");
        bool fullBase = limit == int.MaxValue;

        await using var host = selfHost ? await SelfHost.StartAsync(new Dictionary<string, string?>
        {
            ["Adanns:EmbedderThreads"] = o.TryGetValue("--server-threads", out var st) ? st : "2",
            ["Adanns:Limits:MaxBatch"] = Math.Max(batch, 1024).ToString(CultureInfo.InvariantCulture),
        }).ConfigureAwait(false) : null;
        using var client = new AdannsClient(host?.Address ?? o["--address"], o.GetValueOrDefault("--api-key"));
        string name = "text-ingest-" + Guid.NewGuid().ToString("N")[..8];
        await client.Collections.CreateAsync(new CreateCollectionRequest { Name = name, Metric = Metric.Cosine, Embedder = "minilm", IndexSpec = spec });
        Console.WriteLine($"ingest: {baseTexts.Length} texts of {dir}/base.tsv into {name} ({spec}, embedder minilm), {batch} per request");

        // The first request loads the model on the server: time it apart.
        long t0 = Stopwatch.GetTimestamp();
        await client.UpsertAsync(name, [new Point { Id = ulong.MaxValue, Text = "warm-up" }]);
        Console.WriteLine($"  first request (model load): {Stopwatch.GetElapsedTime(t0).TotalSeconds:F2} s");
        await client.DeleteAsync(name, [(PointId)ulong.MaxValue]);

        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < baseTexts.Length; i += batch)
        {
            var points = new List<Point>(batch);
            for (int j = i; j < Math.Min(baseTexts.Length, i + batch); j++) points.Add(new Point { Id = (ulong)j, Text = baseTexts[j] });
            await client.UpsertAsync(name, points);
        }
        double ingest = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Console.WriteLine(FormattableString.Invariant($"  ingest: {baseTexts.Length / ingest:F1} vectors/s ({ingest:F1} s; embedding on the server, wait=true)"));

        long tb = Stopwatch.GetTimestamp();
        await foreach (var _ in client.BuildIndexAsync(name)) { }
        Console.WriteLine($"  index built in {Stopwatch.GetElapsedTime(tb).TotalSeconds:F1} s");
        if (!fullBase && o.ContainsKey("--recall-base-vectors"))
        {
            await client.DeleteCollectionAsync(name);
            name += "-vectors";
            await client.Collections.CreateAsync(new CreateCollectionRequest { Name = name, Metric = Metric.Cosine, Embedder = "minilm", IndexSpec = spec });
            using var baseVectors = VectorFile.ReadVectors(Path.Combine(dir, "minilm_base.fvecs"));
            for (int i = 0; i < baseVectors.Count; i += 1000)
            {
                var points = new List<Point>(1000);
                for (int j = i; j < Math.Min(baseVectors.Count, i + 1000); j++) points.Add(Point.Create((ulong)j, baseVectors.Row(j)));
                await client.UpsertAsync(name, points);
            }
            await foreach (var _ in client.BuildIndexAsync(name)) { }
            Console.WriteLine($"  recall on {name}: all {baseVectors.Count} base vectors of minilm_base.fvecs; queries as text (embedded on the server) and as vectors");
        }
        else if (!fullBase)
        {
            Console.WriteLine("  (a --limit subset: recall against the full ground truth is not meaningful; add --recall-base-vectors)");
        }

        foreach (bool exact in new[] { false, true })
        {
            var parameters = exact ? new SearchParams { Exact = true } : new SearchParams { Nprobe = (uint)nprobe };
            string label = exact ? "exact" : $"nprobe {nprobe}";
            var textHits = new List<ulong[]>();
            long ts = Stopwatch.GetTimestamp();
            for (int i = 0; i < queryTexts.Length; i += 100)
            {
                var searches = queryTexts.Skip(i).Take(100).Select(q => new SearchRequest { Text = q, TopK = (uint)k, Params = parameters });
                var r = await client.SearchBatchAsync(name, searches);
                textHits.AddRange(r.Results.Select(x => x.Points.Select(p => p.Id.Num).ToArray()));
            }
            double textSeconds = Stopwatch.GetElapsedTime(ts).TotalSeconds;
            var vectorHits = new List<ulong[]>();
            ts = Stopwatch.GetTimestamp();
            for (int i = 0; i < queryTexts.Length; i += 100)
            {
                var searches = Enumerable.Range(i, Math.Min(100, queryTexts.Length - i))
                    .Select(q => AdannsClient.Query(name, queryVectors.Row(q), k, parameters: parameters));
                var r = await client.SearchBatchAsync(name, searches);
                vectorHits.AddRange(r.Results.Select(x => x.Points.Select(p => p.Id.Num).ToArray()));
            }
            double vectorSeconds = Stopwatch.GetElapsedTime(ts).TotalSeconds;
            Console.WriteLine(FormattableString.Invariant(
                $"  {label}: recall@{k} text queries {Recall(textHits, gt, k):F4} ({queryTexts.Length / textSeconds:F0} q/s incl. embedding), vector queries {Recall(vectorHits, gt, k):F4} ({queryTexts.Length / vectorSeconds:F0} q/s)"));
        }
        await client.DeleteCollectionAsync(name);
        return 0;
    }

    private static double Recall(List<ulong[]> hits, IntMatrix gt, int k)
    {
        long found = 0;
        for (int q = 0; q < hits.Count; q++)
        {
            var truth = new HashSet<ulong>();
            foreach (int id in gt.Row(q)[..k]) truth.Add((ulong)id);
            found += hits[q].Count(truth.Contains);
        }
        return found / (double)(hits.Count * k);
    }
}
