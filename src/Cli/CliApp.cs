using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Adanns.Client;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.IO;
using Adanns.Engine.Storage;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Adanns.Cli;

/// <summary>Exit codes a script can rely on.</summary>
public static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;

    /// <summary>Bad command line (unknown option, missing argument, --db and --server both or neither).</summary>
    public const int Usage = 1;

    /// <summary>The database or server refused or failed (the message names the error code, e.g. CollectionNotFound).</summary>
    public const int Failed = 2;

    /// <summary>An input file is missing or malformed.</summary>
    public const int BadInput = 3;

    /// <summary>Interrupted (Ctrl+C); everything acknowledged before it is stored, and an import resumes when re-run.</summary>
    public const int Cancelled = 130;
}

/// <summary>The <c>adanns</c> command line: import, search, info, snapshot, serve.</summary>
public static class CliApp
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };
    private static readonly JsonSerializerOptions JsonSkipNulls = new() { WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>Parses <paramref name="args"/> and runs the command; returns its exit code (see <see cref="ExitCodes"/>).</summary>
    /// <param name="args">The command line.</param>
    /// <param name="console">Where tables and progress go (progress only when it is an interactive terminal).</param>
    /// <param name="stdout">Where JSON and summary lines go.</param>
    /// <param name="stderr">Where errors go, one line each.</param>
    /// <param name="cancellationToken">Stops the command like Ctrl+C does.</param>
    public static async Task<int> RunAsync(string[] args, IAnsiConsole console, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var io = new Io(console, stdout, stderr);
        var root = new RootCommand("adanns: load vector files into an AdannsDotNet database (--db DIR) or server (--server URL), search, inspect, snapshot and serve it.")
        {
            ImportCommand(io), SearchCommand(io), InfoCommand(io), SnapshotCommand(io), ServeCommand(io),
        };
        var parsed = root.Parse(args);
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One MiniLM per process, loaded on first use (by a collection with embedder "minilm").</summary>
    private static readonly Embeddings.MiniLmTextEmbedder SharedMiniLm = new();

    private sealed record Io(IAnsiConsole Console, TextWriter Out, TextWriter Err);

    // ------------------------------------------------------------ shared options

    private sealed class Target
    {
        public Option<string?> Db { get; } = new("--db") { Description = "Embedded database directory." };
        public Option<string?> Server { get; } = new("--server") { Description = "Server address, e.g. http://127.0.0.1:50051." };
        public Option<string?> ApiKey { get; } = new("--api-key") { Description = "API key for --server (default: the ADANNS_API_KEY environment variable)." };

        public void AddTo(Command c)
        {
            c.Options.Add(Db);
            c.Options.Add(Server);
            c.Options.Add(ApiKey);
            c.Validators.Add(r =>
            {
                bool db = r.GetValue(Db) is not null, server = r.GetValue(Server) is not null;
                if (db == server) r.AddError("Give exactly one of --db DIR (embedded) or --server URL (remote).");
            });
        }

        /// <summary>The database or server; <paramref name="mustExist"/>: refuse to create an empty database for a read.</summary>
        public IAdannsDatabase Open(ParseResult r, bool mustExist)
        {
            if (r.GetValue(Db) is { } dir)
            {
                if (mustExist && !Directory.Exists(Path.Combine(dir, "collections")))
                    throw new AdannsException(AdannsErrorCode.CollectionNotFound, $"There is no database in \"{dir}\" (import into it first).");
                // Maintenance runs on request only: an import trains once at the end instead of at every doubling.
                return AdannsDatabase.Open(dir, new DatabaseOptions
                {
                    BackgroundMaintenance = false,
                    // As the server does: a trained index measures its cost/recall frontier, so info shows it and
                    // search --target-recall works.
                    ProfileIndexes = true,
                    // Collections created with embedder "minilm" take text here as on a server (the model loads on first use).
                    Embedders = new Dictionary<string, ITextEmbedder> { [Embeddings.MiniLmTextEmbedder.DefaultName] = SharedMiniLm },
                });
            }
            string url = r.GetValue(Server)!;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                throw new AdannsException(AdannsErrorCode.InvalidArgument, $"--server must be an http:// or https:// address such as http://127.0.0.1:50051 (got \"{url}\").");
            return new AdannsClient(new AdannsClientOptions { Address = uri, ApiKey = r.GetValue(ApiKey) ?? Environment.GetEnvironmentVariable("ADANNS_API_KEY") });
        }
    }

    private static Option<bool> JsonOption() => new("--json") { Description = "Print JSON on stdout (for scripts) instead of tables." };

    private static Option<string> CollectionOption() => new("--collection", "-c") { Description = "Collection name.", Required = true };

    /// <summary>Runs a command body, turning failures into one stderr line and an exit code.</summary>
    private static async Task<int> Guard(Io io, CancellationToken ct, Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await io.Err.WriteLineAsync("adanns: cancelled.").ConfigureAwait(false);
            return ExitCodes.Cancelled;
        }
        catch (AdannsException e)
        {
            await io.Err.WriteLineAsync($"adanns: {e.Message} [{e.Code}]").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (Exception e) when (e is DatasetFormatException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            await io.Err.WriteLineAsync($"adanns: {e.Message}").ConfigureAwait(false);
            return ExitCodes.BadInput;
        }
        catch (IOException e)
        {
            await io.Err.WriteLineAsync($"adanns: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
    }

    private static async Task<int> Usage(Io io, string message)
    {
        await io.Err.WriteLineAsync($"adanns: {message}").ConfigureAwait(false);
        return ExitCodes.Usage;
    }

    private static Metric ParseMetric(string s) => s.ToLowerInvariant() switch
    {
        "l2" => Metric.L2,
        "ip" => Metric.InnerProduct,
        _ => Metric.Cosine,
    };

    private static string MetricName(Metric m) => m switch
    {
        Metric.L2 => "l2",
        Metric.InnerProduct => "ip",
        _ => "cosine",
    };

    private static object IdJson(RecordId id) => id.IsString ? id.Text! : id.Number;

    // ------------------------------------------------------------ import

    private static Command ImportCommand(Io io)
    {
        var file = new Argument<string>("FILE") { Description = "Vectors: .fvecs .bvecs .fbin .u8bin .npy .hdf5/.h5 (FILE#dataset; default train) or IDX." };
        var collection = CollectionOption();
        var target = new Target();
        var metric = new Option<string>("--metric") { Description = "Metric of a new collection.", DefaultValueFactory = _ => "l2" };
        metric.AcceptOnlyFromAmong("l2", "ip", "cosine");
        var spec = new Option<string>("--spec") { Description = "Index spec of a new collection: Auto (default; Auto@0.9 for another recall@10 target) lets the index tune itself, or a pipeline such as IVF1024@64,Scan128,Rerank384.", DefaultValueFactory = _ => "Auto" };
        var ids = new Option<string?>("--ids") { Description = "Integer file with one id per row (.ivecs, .ibin, .npy, HDF5); default: ids are row numbers." };
        var batch = new Option<int>("--batch") { Description = "Records per write (capped so one write stays under 3 MB).", DefaultValueFactory = _ => 1000 };
        var limit = new Option<int?>("--limit") { Description = "Import only the first N rows." };
        var noIndex = new Option<bool>("--no-index") { Description = "Do not train the index at the end (it trains later, when due)." };
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress bar (it is also off when output is not a terminal)." };
        var json = JsonOption();
        var c = new Command("import", "Load a vector file into a collection (created if missing), batched, with progress; re-running skips ids already stored.")
        {
            file, collection, metric, spec, ids, batch, limit, noIndex, noProgress, json,
        };
        target.AddTo(c);
        c.SetAction((r, ct) => Guard(io, ct, async () =>
        {
            if (r.GetValue(batch) is < 1 or > 10_000) return await Usage(io, "--batch must be in [1, 10000].").ConfigureAwait(false);
            if (r.GetValue(limit) is < 1) return await Usage(io, "--limit must be at least 1.").ConfigureAwait(false);
            string path = r.GetValue(file)!;
            var info = VectorFile.GetInfo(path);
            long rowsInFile = info.Rows;
            int n = (int)Math.Min(rowsInFile, r.GetValue(limit) ?? int.MaxValue);
            int dimension = info.Dimension;
            // The header and element type are checked now, before a collection is created; a malformed row further on
            // stops the import at its chunk (the rows before it are stored, and a re-run resumes).
            foreach (var _ in VectorFile.ReadVectorChunks(path, Math.Min(n, 1))) { }
            ulong[] idOf = ReadIds(r.GetValue(ids), n);
            await using var db = target.Open(r, mustExist: false);
            string name = r.GetValue(collection)!;
            IAdannsCollection col;
            bool created = false;
            try
            {
                col = await db.OpenCollectionAsync(name, ct).ConfigureAwait(false);
            }
            catch (AdannsException e) when (e.Code == AdannsErrorCode.CollectionNotFound && !(e.Message.Contains("no database", StringComparison.Ordinal)))
            {
                col = await db.CreateCollectionAsync(new CollectionConfig(name, dimension, ParseMetric(r.GetValue(metric)!), r.GetValue(spec)!), ct).ConfigureAwait(false);
                created = true;
            }
            if (col.Dimension != dimension)
                throw new AdannsException(AdannsErrorCode.WrongDimension, $"Collection \"{name}\" holds {col.Dimension}-dim vectors; {path} has {dimension}.");

            bool asJson = r.GetValue(json);
            bool progress = !asJson && !r.GetValue(noProgress) && io.Console.Profile.Capabilities.Interactive;
            // One write must fit a log entry (4 MiB): wide vectors get smaller batches than asked for.
            int perBatch = Math.Max(1, Math.Min(r.GetValue(batch), 3_000_000 / (4 * dimension + 256)));
            // Streamed: a few MiB of the file are decoded at a time, whatever its size.
            var run = new ImportRun(col, VectorFile.ReadVectorChunks(path, n), idOf, perBatch, resume: !created && await col.CountAsync(null, ct).ConfigureAwait(false) > 0);
            var sw = Stopwatch.StartNew();
            if (progress)
            {
                await io.Console.Progress().AutoClear(false).HideCompleted(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RateColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask($"import {name}", maxValue: n);
                        await run.RunAsync(done => task.Value = done, ct).ConfigureAwait(false);
                    }).ConfigureAwait(false);
            }
            else
            {
                await run.RunAsync(_ => { }, ct).ConfigureAwait(false);
            }
            double importSeconds = sw.Elapsed.TotalSeconds;
            if (run.Cancelled)
            {
                await io.Err.WriteLineAsync($"adanns: import cancelled after {run.Imported:N0} records (acknowledged and stored); run the same command again to resume.")
                    .ConfigureAwait(false);
                return ExitCodes.Cancelled;
            }
            double indexSeconds = 0;
            bool trained = false;
            if (!r.GetValue(noIndex))
            {
                var t = Stopwatch.StartNew();
                trained = progress
                    ? await io.Console.Status().StartAsync("training the index", _ => col.WaitForIndexAsync(ct)).ConfigureAwait(false)
                    : await col.WaitForIndexAsync(ct).ConfigureAwait(false);
                indexSeconds = t.Elapsed.TotalSeconds;
            }
            long count = await col.CountAsync(null, ct).ConfigureAwait(false);
            double rate = run.Imported / Math.Max(importSeconds, 1e-9);
            if (asJson)
            {
                await io.Out.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    collection = name, created, rows = n, imported = run.Imported, skipped = run.Skipped, count,
                    importSeconds, vectorsPerSecond = rate, indexTrained = trained, indexSeconds,
                }, Json)).ConfigureAwait(false);
            }
            else
            {
                await io.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"Imported {run.Imported:N0} records ({run.Skipped:N0} already stored) into {name} in {importSeconds:F1} s: {rate:N0} vectors/s; {count:N0} in the collection{(trained ? $"; index trained in {indexSeconds:F1} s" : "")}."))
                    .ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return c;
    }

    private static ulong[] ReadIds(string? file, int n)
    {
        var ids = new ulong[n];
        if (file is null)
        {
            for (int i = 0; i < n; i++) ids[i] = (ulong)i;
            return ids;
        }
        var m = VectorFile.ReadInts(file, n);
        if (m.Rows < n || m.Cols != 1)
            throw new DatasetFormatException(file, 0, $"the id file must hold one id per row for {n} rows (it has {m.Rows} × {m.Cols})");
        for (int i = 0; i < n; i++)
        {
            int v = m.Data[i];
            if (v < 0) throw new DatasetFormatException(file, 0, $"row {i} holds the negative id {v}; ids must be ≥ 0");
            ids[i] = (ulong)v;
        }
        return ids;
    }

    /// <summary>Vectors per second, from the task's speed.</summary>
    private sealed class RateColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(string.Create(CultureInfo.InvariantCulture, $"{task.Speed ?? 0:N0} vec/s"));
    }

    // ------------------------------------------------------------ search

    private static Command SearchCommand(Io io)
    {
        var queries = new Argument<string?>("QUERYFILE")
        {
            Description = "A vector file (each row a query), or one query as comma-separated numbers; omit it with --text.", Arity = ArgumentArity.ZeroOrOne,
        };
        var collection = CollectionOption();
        var target = new Target();
        var k = new Option<int>("--k") { Description = "Results per query.", DefaultValueFactory = _ => 10 };
        var exact = new Option<bool>("--exact") { Description = "Exact search (scan every vector at full dimension)." };
        var nprobe = new Option<int?>("--nprobe") { Description = "IVF lists probed (default: the index's)." };
        var targetRecall = new Option<double?>("--target-recall") { Description = "Recall target in (0, 1]: the cheapest profiled configuration reaching it (needs a profiled index)." };
        var row = new Option<int?>("--row") { Description = "Only this row of QUERYFILE." };
        var limit = new Option<int?>("--limit") { Description = "Only the first N rows of QUERYFILE." };
        var text = new Option<string[]>("--text", "-t")
        {
            Description = "Search by text instead of vectors (repeat for several queries): embedded by the collection's embedder, or with --embedder here.",
        };
        var embedder = new Option<string?>("--embedder")
        {
            Description = "Embed --text in this process with this model (minilm: all-MiniLM-L6-v2, 384 dims, or its Matryoshka prefix when the collection is narrower), for a collection that holds that model's vectors but has no embedder of its own.",
        };
        embedder.AcceptOnlyFromAmong(Embeddings.MiniLmTextEmbedder.DefaultName);
        var withPayload = new Option<bool>("--payload") { Description = "Show each hit's payload." };
        var json = JsonOption();
        var c = new Command("search", "Search a collection by vectors or --text: one result list of ids and scores per query, in query order.")
        {
            queries, collection, k, exact, nprobe, targetRecall, row, limit, text, embedder, withPayload, json,
        };
        target.AddTo(c);
        c.Validators.Add(r =>
        {
            bool file = r.GetValue(queries) is not null, texts = r.GetValue(text) is { Length: > 0 };
            if (file == texts) r.AddError("Give exactly one of QUERYFILE (vectors) or --text TEXT.");
            if (texts && (r.GetValue(row) is not null || r.GetValue(limit) is not null)) r.AddError("--row and --limit select rows of QUERYFILE; they do not apply to --text.");
            if (!texts && r.GetValue(embedder) is not null) r.AddError("--embedder embeds --text; it does not apply to a QUERYFILE.");
            if (r.GetValue(targetRecall) is not null && (r.GetValue(nprobe) is not null || r.GetValue(exact)))
                r.AddError("--target-recall picks nprobe and the rest from the index's profile; do not combine it with --nprobe or --exact.");
        });
        c.SetAction((r, ct) => Guard(io, ct, async () =>
        {
            if (r.GetValue(k) < 1) return await Usage(io, "--k must be at least 1.").ConfigureAwait(false);
            if (r.GetValue(nprobe) is < 1) return await Usage(io, "--nprobe must be at least 1.").ConfigureAwait(false);
            if (r.GetValue(row) is < 0) return await Usage(io, "--row must be ≥ 0.").ConfigureAwait(false);
            if (r.GetValue(targetRecall) is double t && !(t > 0 && t <= 1)) return await Usage(io, "--target-recall must be in (0, 1].").ConfigureAwait(false);
            string[] texts = r.GetValue(text) ?? [];
            if (texts.Any(string.IsNullOrWhiteSpace)) return await Usage(io, "--text must not be empty.").ConfigureAwait(false);
            var rows = texts.Length == 0 ? ReadQueries(r.GetValue(queries)!, r.GetValue(row), r.GetValue(limit)) : null;
            await using var db = target.Open(r, mustExist: true);
            var col = await db.OpenCollectionAsync(r.GetValue(collection)!, ct).ConfigureAwait(false);
            SearchParams? p = r.GetValue(exact) || r.GetValue(nprobe) is not null || r.GetValue(targetRecall) is not null
                ? new SearchParams { Exact = r.GetValue(exact) ? true : null, NProbe = r.GetValue(nprobe), TargetRecall = r.GetValue(targetRecall) }
                : null;
            bool payload = r.GetValue(withPayload);
            IReadOnlyList<SearchResult> results;
            if (rows is not null)
            {
                results = await col.SearchBatchAsync(rows, r.GetValue(k), p, null, payload, ct).ConfigureAwait(false);
            }
            else if (r.GetValue(embedder) is not null)
            {
                results = await col.SearchBatchAsync(await EmbedHereAsync(col, texts, ct).ConfigureAwait(false), r.GetValue(k), p, null, payload, ct).ConfigureAwait(false);
            }
            else
            {
                if ((await col.DescribeAsync(ct).ConfigureAwait(false)).Embedder is null)
                    return await Usage(io, $"collection \"{col.Name}\" has no embedder, so it cannot embed --text; pass --embedder minilm to embed it here (the collection must hold that model's vectors).")
                        .ConfigureAwait(false);
                var list = new List<SearchResult>(texts.Length);
                foreach (var one in texts) list.Add(await col.SearchTextAsync(one, r.GetValue(k), p, null, payload, ct).ConfigureAwait(false));
                results = list;
            }
            int first = r.GetValue(row) ?? 0;
            if (r.GetValue(json))
            {
                var doc = results.Select((res, q) => new
                {
                    query = first + q,
                    text = texts.Length > 0 ? texts[q] : null,
                    hits = res.Hits.Select(h => new { id = IdJson(h.Id), score = h.Score }).ToArray(),
                });
                await io.Out.WriteLineAsync(JsonSerializer.Serialize(doc, JsonSkipNulls)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var table = new Table().AddColumn("query").AddColumn("rank").AddColumn("id").AddColumn(new TableColumn("score").RightAligned());
            if (payload) table.AddColumn("payload");
            for (int q = 0; q < results.Count; q++)
            {
                var hits = results[q].Hits;
                for (int i = 0; i < hits.Count; i++)
                {
                    var cells = new List<string>
                    {
                        i == 0 ? Markup.Escape(texts.Length > 0 ? texts[q] : (first + q).ToString(CultureInfo.InvariantCulture)) : "",
                        (i + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape(hits[i].Id.ToString()),
                        hits[i].Score.ToString("G6", CultureInfo.InvariantCulture),
                    };
                    if (payload)
                        cells.Add(Markup.Escape(hits[i].Payload is { } pl ? string.Join(", ", pl.Select(kv => $"{kv.Key}={kv.Value}")) : ""));
                    table.AddRow(cells.ToArray());
                }
            }
            io.Console.Write(table);
            return ExitCodes.Ok;
        }));
        return c;
    }

    /// <summary>
    /// Embeds <paramref name="texts"/> with MiniLM in this process, at the collection's dimension (a Matryoshka prefix,
    /// renormalised, when it is narrower than 384).
    /// </summary>
    private static async Task<IReadOnlyList<ReadOnlyMemory<float>>> EmbedHereAsync(IAdannsCollection col, string[] texts, CancellationToken ct)
    {
        if (col.Dimension > Embeddings.MiniLmEmbeddingGenerator.Dimension)
            throw new AdannsException(AdannsErrorCode.WrongDimension,
                $"Collection \"{col.Name}\" holds {col.Dimension}-dim vectors; minilm embeds into at most {Embeddings.MiniLmEmbeddingGenerator.Dimension}.");
        using var embedder = new Embeddings.MiniLmTextEmbedder(dimensions: col.Dimension);
        var flat = await embedder.EmbedAsync(texts, ct).ConfigureAwait(false);
        var rows = new ReadOnlyMemory<float>[texts.Length];
        for (int i = 0; i < rows.Length; i++) rows[i] = flat.AsMemory(i * col.Dimension, col.Dimension);
        return rows;
    }

    private static List<ReadOnlyMemory<float>> ReadQueries(string arg, int? row, int? limit)
    {
        if (!File.Exists(arg) && arg.Contains(',', StringComparison.Ordinal))
        {
            var parts = arg.Split(',', StringSplitOptions.TrimEntries);
            var v = new float[parts.Length];
            for (int i = 0; i < v.Length; i++)
                if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]))
                    throw new AdannsException(AdannsErrorCode.InvalidQuery, $"QUERYFILE: \"{parts[i]}\" (component {i}) is not a number.");
            return [v];
        }
        int take = row is int at ? at + 1 : limit ?? int.MaxValue;
        using var set = VectorFile.ReadVectors(arg, take == int.MaxValue ? null : take);
        if (row is int only)
        {
            if (only >= set.Count) throw new AdannsException(AdannsErrorCode.InvalidQuery, $"--row {only} is past the {set.Count} rows of {arg}.");
            return [set.Row(only).ToArray()];
        }
        var list = new List<ReadOnlyMemory<float>>(set.Count);
        for (int i = 0; i < set.Count; i++) list.Add(set.Row(i).ToArray());
        return list;
    }

    // ------------------------------------------------------------ info

    private static Command InfoCommand(Io io)
    {
        var target = new Target();
        var json = JsonOption();
        var only = new Option<string?>("--collection", "-c") { Description = "Only this collection (the table then lists its index's profiled cost/recall points too)." };
        var c = new Command("info",
            "Collections: name, count, dimension, metric, embedder, index spec and state, the trained index's tuning (pipeline, default parameters, profiled recall), memory (embedded); quarantined collections.")
        {
            json, only,
        };
        target.AddTo(c);
        c.SetAction((r, ct) => Guard(io, ct, async () =>
        {
            await using var db = target.Open(r, mustExist: true);
            var names = r.GetValue(only) is { } one ? [one] : await db.ListCollectionsAsync(ct).ConfigureAwait(false);
            var descriptions = new List<CollectionDescription>();
            foreach (var name in names)
                descriptions.Add(await (await db.OpenCollectionAsync(name, ct).ConfigureAwait(false)).DescribeAsync(ct).ConfigureAwait(false));
            var quarantined = db is AdannsDatabase local ? local.Quarantined : [];
            if (r.GetValue(json))
            {
                await io.Out.WriteLineAsync(JsonSerializer.Serialize(new
                {
                    collections = descriptions.Select(d => new
                    {
                        name = d.Name, count = d.Count, spec = d.IndexSpec, dimension = d.Dimension, metric = MetricName(d.Metric), embedder = d.Embedder,
                        indexTrained = d.Stats.IndexTrained, tombstones = d.Stats.Tombstones, appliedLsn = d.Stats.AppliedLsn,
                        checkpointLsn = d.Stats.CheckpointLsn, retrains = d.Stats.Retrains, diskBytes = d.Stats.RecordLogBytes + d.Stats.WalBytes,
                        memory = d.Memory is { } m
                            ? new { residentBytesPerVector = m.ResidentBytesPerVector, indexBytesPerVector = m.IndexBytesPerVector, vectorsOnDisk = m.VectorsOnDisk, recordStoreMemoryBytes = m.RecordStoreMemoryBytes }
                            : null,
                        tuning = d.Tuning is { } t
                            ? new
                            {
                                spec = t.Spec,
                                defaults = t.Defaults is { } dp ? ParamsJson(dp.NProbe, dp.CoarseDim, dp.ScanDim, dp.Shortlist, dp.Rerank, dp.Exact, dp.PredictedRecall) : null,
                                profile = t.Profile is { } pr
                                    ? new
                                    {
                                        k = pr.K, queries = pr.Queries, vectors = pr.VectorCount, tunedRecall = pr.TunedRecall,
                                        points = pr.Points.Select(pt => new
                                        {
                                            @params = ParamsJson(pt.Params.NProbe ?? 0, pt.Params.CoarseDim ?? 0, pt.Params.ScanDim ?? 0, pt.Params.Shortlist ?? 0, pt.Params.Rerank ?? [], false),
                                            flopsPerQuery = pt.FlopsPerQuery, microsPerQuery = pt.MicrosPerQuery, recall = pt.Recall,
                                        }),
                                    }
                                    : null,
                            }
                            : null,
                    }),
                    quarantined = quarantined.Select(q => new { name = q.Name, reason = q.Reason }),
                }, Json)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var table = new Table().AddColumn("collection").AddColumn(new TableColumn("count").RightAligned()).AddColumn("D").AddColumn("metric")
                .AddColumn("spec").AddColumn("index").AddColumn(new TableColumn("resident B/vector").RightAligned())
                .AddColumn(new TableColumn("disk MiB").RightAligned());
            foreach (var d in descriptions)
            {
                table.AddRow(Markup.Escape(d.Name), d.Count.ToString("N0", CultureInfo.InvariantCulture), d.Dimension.ToString(CultureInfo.InvariantCulture),
                    MetricName(d.Metric), Markup.Escape(d.IndexSpec + (d.Embedder is { } e ? $" (text: {e})" : "")),
                    d.Stats.IndexTrained ? "trained" : "exact (untrained)",
                    d.Memory is { } m ? m.ResidentBytesPerVector.ToString("F0", CultureInfo.InvariantCulture) : "-",
                    ((d.Stats.RecordLogBytes + d.Stats.WalBytes) / 1048576.0).ToString("F1", CultureInfo.InvariantCulture));
            }
            io.Console.Write(table);
            foreach (var d in descriptions)
                if (d.Tuning is { } tuning)
                    io.Console.WriteLine($"{d.Name} tuning: {TuningSummary(tuning)}");
            if (r.GetValue(only) is not null && descriptions[0].Tuning?.Profile is { } profile)
            {
                var points = new Table().Title($"profiled points (recall@{profile.K} over {profile.Queries} queries, {profile.VectorCount:N0} vectors)")
                    .AddColumn("nprobe").AddColumn("coarse dim").AddColumn("scan dim").AddColumn("shortlist").AddColumn("rerank")
                    .AddColumn(new TableColumn("FLOPs/query").RightAligned()).AddColumn(new TableColumn("µs/query").RightAligned()).AddColumn(new TableColumn("recall").RightAligned());
                foreach (var pt in profile.Points)
                {
                    var sp = pt.Params;
                    points.AddRow(Num(sp.NProbe), Num(sp.CoarseDim), Num(sp.ScanDim), Num(sp.Shortlist), RerankText(sp.Rerank ?? []),
                        pt.FlopsPerQuery.ToString("N0", CultureInfo.InvariantCulture), pt.MicrosPerQuery.ToString("F1", CultureInfo.InvariantCulture),
                        pt.Recall.ToString("F4", CultureInfo.InvariantCulture));
                }
                io.Console.Write(points);
            }
            foreach (var q in quarantined) io.Console.MarkupLine($"[red]quarantined[/] {Markup.Escape(q.Name)}: {Markup.Escape(q.Reason)}");
            return ExitCodes.Ok;
        }));
        return c;
    }

    private static object ParamsJson(int nprobe, int coarseDim, int scanDim, int shortlist, IReadOnlyList<RerankStage> rerank, bool exact,
        double? predictedRecall = null) => new
    {
        nprobe, coarseDim, scanDim, shortlist, rerank = rerank.Select(s => new { dim = s.Dim, keep = s.Keep }), exact, predictedRecall,
    };

    private static string Num(int? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "-";

    private static string RerankText(IReadOnlyList<RerankStage> stages) =>
        stages.Count == 0 ? "none" : string.Join(" → ", stages.Select(s => s.Keep is int keep ? $"{s.Dim} keep {keep}" : s.Dim.ToString(CultureInfo.InvariantCulture)));

    /// <summary>One line: the trained pipeline, what a search without parameters runs, and the profiled recall range.</summary>
    private static string TuningSummary(IndexTuning t)
    {
        var parts = new List<string> { t.Spec };
        if (t.Profile?.TunedRecall is double tuned)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"tuned for recall@{t.Profile.K} {tuned:0.###}"));
        if (t.Defaults is { } d)
            parts.Add(string.Create(CultureInfo.InvariantCulture,
                $"default nprobe {d.NProbe}, scan {d.ScanDim}d, shortlist {d.Shortlist}, rerank {RerankText(d.Rerank)}{(d.PredictedRecall is double pr ? $" (predicted recall {pr:F3})" : "")}"));
        parts.Add(t.Profile is { Points.Count: > 0 } p
            ? string.Create(CultureInfo.InvariantCulture, $"profiled recall@{p.K} {p.Points.Min(x => x.Recall):F3}–{p.Points.Max(x => x.Recall):F3} over {p.Points.Count} points")
            : "not profiled");
        return string.Join("; ", parts);
    }

    // ------------------------------------------------------------ snapshot

    private static Command SnapshotCommand(Io io)
    {
        var collection = CollectionOption();
        var target = new Target();
        var json = JsonOption();
        var c = new Command("snapshot", "Checkpoint a collection now (record store, index snapshot, manifest), so a restart replays nothing before it.") { collection, json };
        target.AddTo(c);
        c.SetAction((r, ct) => Guard(io, ct, async () =>
        {
            await using var db = target.Open(r, mustExist: true);
            var col = await db.OpenCollectionAsync(r.GetValue(collection)!, ct).ConfigureAwait(false);
            await col.CheckpointAsync(ct).ConfigureAwait(false);
            var d = await col.DescribeAsync(ct).ConfigureAwait(false);
            if (r.GetValue(json))
                await io.Out.WriteLineAsync(JsonSerializer.Serialize(new { collection = d.Name, checkpointLsn = d.Stats.CheckpointLsn, count = d.Count }, Json)).ConfigureAwait(false);
            else
                await io.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"Snapshot of {d.Name} at LSN {d.Stats.CheckpointLsn} ({d.Count:N0} records).")).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return c;
    }

    // ------------------------------------------------------------ serve

    private static Command ServeCommand(Io io)
    {
        var db = new Option<string>("--db") { Description = "Database directory.", Required = true };
        var host = new Option<string>("--host") { Description = "Address to bind (127.0.0.1 keeps it local).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "gRPC port.", DefaultValueFactory = _ => 50051 };
        var httpPort = new Option<int>("--http-port") { Description = "Port of /metrics and /healthz.", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require this read-write API key." };
        var c = new Command("serve", "Run the gRPC server in this process over --db DIR (Ctrl+C stops it, checkpointing every collection).")
        {
            db, host, port, httpPort, apiKey,
        };
        c.SetAction((r, ct) => Guard(io, ct, async () =>
        {
            var app = Server.ServerHost.Build([], new Dictionary<string, string?>
            {
                ["Adanns:DataDirectory"] = r.GetValue(db),
                ["Adanns:Host"] = r.GetValue(host),
                ["Adanns:GrpcPort"] = r.GetValue(port).ToString(CultureInfo.InvariantCulture),
                ["Adanns:HttpPort"] = r.GetValue(httpPort).ToString(CultureInfo.InvariantCulture),
                ["Adanns:Auth:ReadWriteKey"] = r.GetValue(apiKey),
                ["Adanns:Demo:Enabled"] = "false",
            });
            await using (app.ConfigureAwait(false))
            {
                await app.StartAsync(ct).ConfigureAwait(false);
                await io.Out.WriteLineAsync($"Serving {r.GetValue(db)} on http://{r.GetValue(host)}:{r.GetValue(port)} (Ctrl+C to stop).").ConfigureAwait(false);
                try { await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { /* Ctrl+C: stop below */ }
                await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return c;
    }
}
