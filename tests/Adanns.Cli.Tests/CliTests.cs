using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Adanns.Cli;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;
using Adanns.Engine.IO;
using Adanns.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Adanns.Cli.Tests;

/// <summary>The adanns commands end to end on small generated files, against a database directory and a loopback server.</summary>
public sealed class CliTests : IDisposable
{
    private const int Rows = 3000, D = 16;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "adanns-cli-tests-" + Guid.NewGuid().ToString("N"));
    private readonly string _base, _queries;
    private readonly float[][] _data;

    public CliTests()
    {
        Directory.CreateDirectory(_dir);
        // Clustered data: 30 centres, so an IVF index has meaningful lists.
        var rng = new Random(5);
        var centres = Enumerable.Range(0, 30).Select(_ => Enumerable.Range(0, D).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();
        _data = Enumerable.Range(0, Rows).Select(i => centres[i % 30].Select(x => x + (float)(rng.NextDouble() * 0.4 - 0.2)).ToArray()).ToArray();
        _base = Path.Combine(_dir, "base.fvecs");
        _queries = Path.Combine(_dir, "queries.npy");
        VectorFile.WriteVectors(_base, _data.SelectMany(r => r).ToArray(), D);
        VectorFile.WriteVectors(_queries, _data.Take(5).SelectMany(r => r).ToArray(), D);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    private sealed record Run(int Code, string Out, string Err, string Console)
    {
        public JsonElement Json => JsonDocument.Parse(Out).RootElement;
    }

    private static async Task<Run> CliAsync(CancellationToken ct, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var screen = new StringWriter();
        // Not a terminal: no progress bar, no colours.
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(screen), Interactive = InteractionSupport.No, Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
        });
        console.Profile.Width = 250; // wide enough that no cell wraps
        int code = await CliApp.RunAsync(args, console, stdout, stderr, ct);
        return new Run(code, stdout.ToString(), stderr.ToString(), screen.ToString());
    }

    private static Task<Run> CliAsync(params string[] args) => CliAsync(CancellationToken.None, args);

    private async Task CheckSearchAndInfoAsync(string[] target)
    {
        var info = await CliAsync(["info", .. target, "--json"]);
        Assert.True(info.Code == 0, info.Err);
        var col = info.Json.GetProperty("collections").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "docs");
        Assert.Equal(Rows, col.GetProperty("count").GetInt64());
        Assert.Equal("IVF16", col.GetProperty("spec").GetString());
        Assert.True(col.GetProperty("indexTrained").GetBoolean());
        Assert.True(col.GetProperty("memory").GetProperty("residentBytesPerVector").GetDouble() >= 4 * D); // embedded and from the server
        // The chosen tuning: the trained pipeline, its default parameters and the profiled cost/recall points.
        var tuning = col.GetProperty("tuning");
        Assert.Equal("IVF16", tuning.GetProperty("spec").GetString());
        Assert.InRange(tuning.GetProperty("defaults").GetProperty("nprobe").GetInt32(), 1, 16);
        var profile = tuning.GetProperty("profile");
        Assert.Equal(10, profile.GetProperty("k").GetInt32());
        var points = profile.GetProperty("points").EnumerateArray().ToArray();
        var recalls = points.Select(p => p.GetProperty("recall").GetDouble()).ToArray();
        var flops = points.Select(p => p.GetProperty("flopsPerQuery").GetDouble()).ToArray();
        Assert.True(recalls.Length >= 2, $"{recalls.Length} profile points");
        // The union of the FLOPs and time frontiers, by increasing FLOPs (ComputeProfile.Points): recall need not rise
        // along it — under load a time-frontier point can cost more FLOPs than a higher-recall one (seen in CI at load 16).
        Assert.Equal(flops.Order(), flops);
        var details = await CliAsync(["info", .. target, "-c", "docs"]);
        Assert.True(details.Code == 0, details.Err);
        Assert.Contains("profiled recall@10", details.Console);
        Assert.Contains("profiled points", details.Console);

        // A recall target picks a profiled point (the best one here, so every query finds itself).
        var targeted = await CliAsync(["search", _queries, "-c", "docs", .. target, "--k", "3", "--json", "--target-recall",
            recalls.Max().ToString("R", System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.True(targeted.Code == 0, targeted.Err);
        Assert.Equal(0UL, targeted.Json[0].GetProperty("hits")[0].GetProperty("id").GetUInt64());
        Assert.Equal(ExitCodes.Usage, (await CliAsync(["search", _queries, "-c", "docs", .. target, "--target-recall", "1.5"])).Code);
        Assert.Equal(ExitCodes.Usage, (await CliAsync(["search", _queries, "-c", "docs", .. target, "--target-recall", "0.9", "--nprobe", "4"])).Code);

        foreach (string[] extra in new[] { Array.Empty<string>(), ["--exact"] })
        {
            var search = await CliAsync(["search", _queries, "--collection", "docs", .. target, "--k", "3", "--json", .. extra]);
            Assert.True(search.Code == 0, search.Err);
            var lists = search.Json.EnumerateArray().ToArray();
            Assert.Equal(5, lists.Length);
            for (int q = 0; q < 5; q++)
            {
                Assert.Equal(q, lists[q].GetProperty("query").GetInt32());
                var hits = lists[q].GetProperty("hits").EnumerateArray().ToArray();
                Assert.Equal(3, hits.Length);
                Assert.Equal((ulong)q, hits[0].GetProperty("id").GetUInt64()); // each query is its own row
                Assert.True(hits[0].GetProperty("score").GetSingle() <= hits[1].GetProperty("score").GetSingle()); // L2: best (lowest) first
            }
        }

        // A table for people, from one literal query row.
        var table = await CliAsync(["search", string.Join(",", _data[7].Select(x => x.ToString(System.Globalization.CultureInfo.InvariantCulture))), "-c", "docs", .. target, "--k", "2"]);
        Assert.True(table.Code == 0, table.Err);
        Assert.Contains("rank", table.Console);
        Assert.Contains(" 7 ", table.Console);
    }

    [Fact]
    public async Task Embedded_ImportInfoSearchSnapshot_AndAResumedImportStoresEachRecordOnce()
    {
        string db = Path.Combine(_dir, "db");
        var first = await CliAsync("import", _base, "--collection", "docs", "--db", db, "--spec", "IVF16", "--limit", "1200", "--batch", "250", "--json");
        Assert.True(first.Code == 0, first.Err);
        Assert.Equal(1200, first.Json.GetProperty("imported").GetInt64());
        Assert.True(first.Json.GetProperty("created").GetBoolean());

        // Re-run over the whole file: the first 1,200 ids are skipped, the rest written once.
        var second = await CliAsync("import", _base, "--collection", "docs", "--db", db, "--batch", "250", "--json");
        Assert.True(second.Code == 0, second.Err);
        Assert.Equal(Rows - 1200, second.Json.GetProperty("imported").GetInt64());
        Assert.Equal(1200, second.Json.GetProperty("skipped").GetInt64());
        Assert.Equal(Rows, second.Json.GetProperty("count").GetInt64());
        Assert.True(second.Json.GetProperty("indexTrained").GetBoolean());
        Assert.Equal("", second.Console); // not a terminal: no progress output

        var again = await CliAsync("import", _base, "--collection", "docs", "--db", db);
        Assert.True(again.Code == 0, again.Err);
        Assert.Contains("Imported 0 records (3,000 already stored)", again.Out);

        await CheckSearchAndInfoAsync(["--db", db]);
        var snap = await CliAsync("snapshot", "--collection", "docs", "--db", db, "--json");
        Assert.True(snap.Code == 0, snap.Err);
        // One log sequence number per record written: 3,000 means no record was written twice.
        Assert.Equal(Rows, snap.Json.GetProperty("checkpointLsn").GetInt64());
    }

    [Fact]
    public async Task Server_ImportInfoSearch_AndResume()
    {
        var app = ServerHost.Build([], new Dictionary<string, string?>
        {
            ["Adanns:DataDirectory"] = Path.Combine(_dir, "server"),
            ["Adanns:Host"] = "127.0.0.1",
            ["Adanns:GrpcPort"] = "0",
            ["Adanns:HttpPort"] = "0",
            ["Adanns:Auth:ReadWriteKey"] = "cli-key",
            ["Adanns:Demo:Enabled"] = "false",
            ["Logging:LogLevel:Default"] = "Warning",
        });
        await using (app)
        {
            await app.StartAsync();
            string url = $"http://127.0.0.1:{app.Services.GetRequiredService<BoundEndpoints>().GrpcPort}";
            string[] target = ["--server", url, "--api-key", "cli-key"];
            Run import = default!;
            for (int attempt = 0; attempt < 100; attempt++) // the database opens in the background
            {
                import = await CliAsync(["import", _base, "--collection", "docs", .. target, "--spec", "IVF16", "--limit", "2000", "--json"]);
                if (!import.Err.Contains("[Unavailable]", StringComparison.Ordinal)) break;
                await Task.Delay(100);
            }
            Assert.True(import.Code == 0, import.Err);
            Assert.Equal(2000, import.Json.GetProperty("imported").GetInt64());
            var resume = await CliAsync(["import", _base, "--collection", "docs", .. target, "--json"]);
            Assert.True(resume.Code == 0, resume.Err);
            Assert.Equal(2000, resume.Json.GetProperty("skipped").GetInt64());
            Assert.Equal(Rows - 2000, resume.Json.GetProperty("imported").GetInt64());
            await CheckSearchAndInfoAsync(target);

            // Text through the server's embedder: the server embeds the query.
            await using (var client = new Adanns.Client.AdannsClient(url, "cli-key"))
            {
                var notes = await ((IAdannsDatabase)client).CreateCollectionAsync(new CollectionConfig("notes", 0, Adanns.Engine.Metric.Cosine, "IVF4") { Embedder = "minilm" });
                await notes.UpsertTextAsync([new TextRecord(1UL, "library for decoding JPEG images"), new TextRecord(2UL, "the GNU C compiler")]);
            }
            var byText = await CliAsync(["search", "--text", "compiler for C programs", "-c", "notes", .. target, "--k", "1", "--json"]);
            Assert.True(byText.Code == 0, byText.Err);
            Assert.Equal(2UL, byText.Json[0].GetProperty("hits")[0].GetProperty("id").GetUInt64());
            var info = await CliAsync(["info", .. target, "-c", "notes", "--json"]);
            Assert.Equal("minilm", info.Json.GetProperty("collections")[0].GetProperty("embedder").GetString());

            var denied = await CliAsync("info", "--server", url, "--json");
            Assert.Equal(ExitCodes.Failed, denied.Code);
            Assert.Contains("[Unauthenticated]", denied.Err);
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task CancellingAnImport_StopsIt_AndARerunFinishesIt()
    {
        string db = Path.Combine(_dir, "cancel");
        using var cts = new CancellationTokenSource();
        long upserted = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (i.Meter.Name == EngineMetrics.MeterName && i.Name == "adanns.engine.records.upserted") l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            foreach (var t in tags)
                if (t.Key == "collection" && (string?)t.Value == "stop" && Interlocked.Add(ref upserted, v) > 0) cts.Cancel();
        });
        listener.Start();

        var run = await CliAsync(cts.Token, "import", _base, "--collection", "stop", "--db", db, "--spec", "IVF16", "--batch", "100", "--json");
        Assert.Equal(ExitCodes.Cancelled, run.Code);
        Assert.Contains("run the same command again to resume", run.Err);
        listener.Dispose();
        // Stopped after the writes in flight (at most 5 batches of 100), not after 30.
        Assert.InRange(Interlocked.Read(ref upserted), 100, 500);

        var rerun = await CliAsync("import", _base, "--collection", "stop", "--db", db, "--json", "--no-index");
        Assert.True(rerun.Code == 0, rerun.Err);
        Assert.Equal(Rows, rerun.Json.GetProperty("count").GetInt64());
        Assert.Equal(Rows, rerun.Json.GetProperty("imported").GetInt64() + rerun.Json.GetProperty("skipped").GetInt64());
        Assert.InRange(rerun.Json.GetProperty("skipped").GetInt64(), 100, 500);
    }

    [Fact]
    public async Task ErrorsHaveExitCodesAndOneLine()
    {
        string db = Path.Combine(_dir, "errors");
        Assert.Equal(ExitCodes.Ok, (await CliAsync("import", _base, "-c", "a", "--db", db, "--limit", "50", "--no-index")).Code);

        var missing = await CliAsync("search", _queries, "-c", "nope", "--db", db);
        Assert.Equal(ExitCodes.Failed, missing.Code);
        Assert.Contains("[CollectionNotFound]", missing.Err);
        Assert.Single(missing.Err.Trim().Split('\n'));

        var noFile = await CliAsync("import", Path.Combine(_dir, "absent.fvecs"), "-c", "a", "--db", db);
        Assert.Equal(ExitCodes.BadInput, noFile.Code);

        var wrongDim = Path.Combine(_dir, "wide.fvecs");
        VectorFile.WriteVectors(wrongDim, new float[2 * (D + 1)], D + 1);
        var dim = await CliAsync("import", wrongDim, "-c", "a", "--db", db);
        Assert.Equal(ExitCodes.Failed, dim.Code);
        Assert.Contains("[WrongDimension]", dim.Err);

        Assert.Equal(ExitCodes.Usage, (await CliAsync("info", "--db", db, "--server", "http://127.0.0.1:1")).Code);
        Assert.Equal(ExitCodes.Usage, (await CliAsync("info")).Code);
        Assert.Equal(ExitCodes.Usage, (await CliAsync("import", _base, "-c", "a", "--db", db, "--metric", "hamming")).Code);
        var nodb = await CliAsync("info", "--db", Path.Combine(_dir, "never-created"));
        Assert.Equal(ExitCodes.Failed, nodb.Code);
        Assert.False(Directory.Exists(Path.Combine(_dir, "never-created")));
    }

    [Fact]
    public async Task WideVectors_GoInBatchesThatFitOneWrite()
    {
        // 800 × 1,400 floats: the default 1,000-record batch would be 5.6 MB, over one log entry's 4 MiB.
        const int Wide = 1400;
        var rng = new Random(9);
        string file = Path.Combine(_dir, "wide.fbin");
        VectorFile.WriteVectors(file, Enumerable.Range(0, 800 * Wide).Select(_ => (float)rng.NextDouble()).ToArray(), Wide);
        var run = await CliAsync("import", file, "-c", "wide", "--db", Path.Combine(_dir, "wide"), "--no-index", "--json");
        Assert.True(run.Code == 0, run.Err);
        Assert.Equal(800, run.Json.GetProperty("count").GetInt64());
    }

    [Fact]
    public async Task InfoShowsWhatAutoChose()
    {
        string db = Path.Combine(_dir, "auto");
        var import = await CliAsync("import", _base, "-c", "auto", "--db", db, "--spec", "Auto@0.9", "--json");
        Assert.True(import.Code == 0, import.Err);
        Assert.True(import.Json.GetProperty("indexTrained").GetBoolean());
        var info = await CliAsync("info", "--db", db, "--json");
        Assert.True(info.Code == 0, info.Err);
        var col = info.Json.GetProperty("collections")[0];
        Assert.Equal("Auto@0.9", col.GetProperty("spec").GetString());   // what was asked for
        var tuning = col.GetProperty("tuning");
        string chosen = tuning.GetProperty("spec").GetString()!;            // what the tuner chose on these vectors
        Assert.DoesNotContain("Auto", chosen, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0.9, tuning.GetProperty("profile").GetProperty("tunedRecall").GetDouble());
        // A search without parameters runs at the target: its profiled point's recall is the prediction.
        Assert.True(tuning.GetProperty("defaults").GetProperty("predictedRecall").GetDouble() > 0);
        var table = await CliAsync("info", "--db", db);
        Assert.Contains($"auto tuning: {chosen}; tuned for recall@10 0.9", table.Console);
    }

    [Fact]
    public async Task AMalformedRowStopsAStreamedImportAtItsChunk_AndTheRowsBeforeItStay()
    {
        // 800 × 1,400 floats stream in chunks of 748 rows (at most 2^20 floats); row 760, in the second chunk, is NaN.
        const int Wide = 1400;
        var rng = new Random(10);
        var values = Enumerable.Range(0, 800 * Wide).Select(_ => (float)rng.NextDouble()).ToArray();
        values[760 * Wide + 3] = float.NaN;
        string file = Path.Combine(_dir, "bad.fbin");
        VectorFile.WriteVectors(file, values.Select(v => float.IsNaN(v) ? 0 : v).ToArray(), Wide);
        using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write))
        {
            stream.Position = 8 + (760L * Wide + 3) * 4;
            stream.Write(BitConverter.GetBytes(float.NaN));
        }
        string db = Path.Combine(_dir, "bad");
        var run = await CliAsync("import", file, "-c", "bad", "--db", db, "--no-index", "--json");
        Assert.Equal(ExitCodes.BadInput, run.Code);
        Assert.Contains("row 760 column 3 is NaN", run.Err);
        await using var database = AdannsDatabase.Open(db);
        var c = database.GetCollection("bad");
        Assert.Equal(748, c.Count); // the first chunk, every batch of it acknowledged
        Assert.Equal(values.AsSpan(747 * Wide, Wide).ToArray(), (await c.GetAsync(747UL))!.Vector.ToArray());
    }

    [Fact]
    public async Task SearchByText_WithTheCollectionsEmbedder_OrEmbeddedHere()
    {
        string[] texts =
        [
            "a fast text editor for the terminal",
            "library for decoding JPEG images",
            "the GNU C compiler",
            "tools to manage wireless network interfaces",
        ];
        string db = Path.Combine(_dir, "text");
        using var minilm = new Adanns.Embeddings.MiniLmTextEmbedder();
        // A collection that embeds its own text (created through the API: the CLI imports vector files).
        await using (var database = AdannsDatabase.Open(db, new DatabaseOptions { Embedders = new Dictionary<string, ITextEmbedder> { ["minilm"] = minilm } }))
        {
            var notes = database.CreateCollection(new CollectionConfig("notes", 0, Adanns.Engine.Metric.Cosine, "IVF4") { Embedder = "minilm" });
            await notes.UpsertTextAsync(texts.Select((t, i) => new TextRecord((ulong)i, t)).ToList());
        }
        var byText = await CliAsync("search", "--text", "compiler for C programs", "-t", "wifi configuration", "-c", "notes", "--db", db, "--k", "2", "--json");
        Assert.True(byText.Code == 0, byText.Err);
        var lists = byText.Json.EnumerateArray().ToArray();
        Assert.Equal(2, lists.Length);
        Assert.Equal("compiler for C programs", lists[0].GetProperty("text").GetString());
        Assert.Equal(2UL, lists[0].GetProperty("hits")[0].GetProperty("id").GetUInt64());
        Assert.Equal(3UL, lists[1].GetProperty("hits")[0].GetProperty("id").GetUInt64());
        var table = await CliAsync("search", "--text", "image decoder", "-c", "notes", "--db", db, "--k", "1", "--payload");
        Assert.True(table.Code == 0, table.Err);
        Assert.Contains("text=\"library for decoding JPEG images\"", table.Console);

        // Vectors of the same model in a plain collection, and its 128-dim Matryoshka prefix: --embedder embeds here.
        var full = await minilm.EmbedAsync(texts);
        foreach (int dims in new[] { 384, 128 })
        {
            var rows = new float[texts.Length * dims];
            for (int i = 0; i < texts.Length; i++)
            {
                var prefix = full.AsSpan(i * 384, dims);
                Adanns.Embeddings.MiniLmEmbeddingGenerator.Normalize(prefix, rows.AsSpan(i * dims, dims));
            }
            string file = Path.Combine(_dir, $"minilm{dims}.fvecs");
            VectorFile.WriteVectors(file, rows, dims);
            string name = $"vecs{dims}";
            Assert.Equal(ExitCodes.Ok, (await CliAsync("import", file, "-c", name, "--db", db, "--metric", "cosine", "--no-index")).Code);
            var here = await CliAsync("search", "--text", "compiler for C programs", "--embedder", "minilm", "-c", name, "--db", db, "--k", "1", "--json");
            Assert.True(here.Code == 0, here.Err);
            Assert.Equal(2UL, here.Json[0].GetProperty("hits")[0].GetProperty("id").GetUInt64());
        }
        var noEmbedder = await CliAsync("search", "--text", "compiler", "-c", "vecs384", "--db", db);
        Assert.Equal(ExitCodes.Usage, noEmbedder.Code);
        Assert.Contains("has no embedder", noEmbedder.Err);
        Assert.Contains("--embedder minilm", noEmbedder.Err);
        Assert.Equal(ExitCodes.Usage, (await CliAsync("search", _queries, "--text", "x", "-c", "notes", "--db", db)).Code); // both
        Assert.Equal(ExitCodes.Usage, (await CliAsync("search", "-c", "notes", "--db", db)).Code); // neither
        Assert.Equal(ExitCodes.Usage, (await CliAsync("search", "--text", "x", "--embedder", "word2vec", "-c", "notes", "--db", db)).Code);
    }

    [Fact]
    public void TheToolRunsAsAProcess_WithoutProgressWhenNotATerminal()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "adanns.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "import", _base, "--collection", "p", "--db", Path.Combine(_dir, "proc"), "--limit", "500", "--no-index" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000));
        Assert.True(p.ExitCode == 0, stderr);
        Assert.StartsWith("Imported 500 records (0 already stored) into p in ", stdout);
        Assert.DoesNotContain('\u001b', stdout + stderr); // no ANSI escapes, so no progress bar
        Assert.Single(stdout.Trim().Split('\n'));
    }
}
