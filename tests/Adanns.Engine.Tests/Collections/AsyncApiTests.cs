using System.Diagnostics.Metrics;
using Adanns.Engine.Collections;
using Adanns.Engine.Hosting;
using Adanns.Engine.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Adanns.Engine.Tests.Collections;

/// <summary>The async embedded API: search results with reports, batch search, async gets, disposal, logging, meters, DI.</summary>
public class AsyncApiTests : CollectionTestBase
{
    private const int D = 16;

    private static async Task<Collection> TrainedAsync(AdannsDatabase db, float[][] data, string name = "v")
    {
        var c = db.CreateCollection(new CollectionConfig(name, D, Metric.L2, "IVF16") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, data.Length).Select(i => new VectorRecord((ulong)i, data[i], PayloadOf(i))).ToList());
        Assert.True(await c.WaitForIndexAsync());
        return c;
    }

    [Fact]
    public async Task SearchAsyncAndBatch_MatchTheSynchronousSearch()
    {
        var data = Vectors(1500, D, 11);
        using var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = await TrainedAsync(db, data);
        var queries = Enumerable.Range(0, 300).Select(i => (ReadOnlyMemory<float>)data[i * 5]).ToList();

        var one = await c.SearchAsync(queries[7], 5, withPayload: true);
        var sync = c.Search(queries[7].Span, 5, null, null, true, out var path);
        Assert.Equal(SearchPath.Index, one.Report.Path);
        Assert.Equal(path, one.Report.Path);
        Assert.NotNull(one.Report.Used);
        Assert.Equal(sync.Select(h => h.Id), one.Hits.Select(h => h.Id));
        Assert.Equal(35UL, one.Hits[0].Id.Number); // the query is row 35 itself
        Assert.NotNull(one.Hits[0].Payload);

        // 300 queries: two chunks through the index's batch path; same neighbours as one by one.
        var batch = await c.SearchBatchAsync(queries, 5);
        Assert.Equal(queries.Count, batch.Count);
        for (int i = 0; i < queries.Count; i++)
        {
            var single = c.Search(queries[i].Span, 5);
            Assert.Equal(single.Select(h => h.Id), batch[i].Hits.Select(h => h.Id));
            Assert.Equal(SearchPath.Index, batch[i].Report.Path);
            Assert.Null(batch[i].Hits[0].Payload);
        }

        // With a filter each query runs alone (filtered path) and every hit matches.
        var red = Filter.Eq("color", "red");
        var filtered = await c.SearchBatchAsync(queries.Take(20).ToList(), 5, filter: red, withPayload: true);
        Assert.All(filtered, r => Assert.All(r.Hits, h => Assert.True(red.Matches(h.Payload))));

        var bad = await Assert.ThrowsAsync<AdannsException>(() => c.SearchBatchAsync([queries[0], new float[D - 1]], 5));
        Assert.Equal(AdannsErrorCode.WrongDimension, bad.Code);
        Assert.Equal(1, bad.RecordIndex);
        Assert.Contains("query 1", bad.Message);
    }

    [Fact]
    public async Task CancellingALongBatch_StopsItBetweenChunks()
    {
        var data = Vectors(1200, D, 12);
        using var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = await TrainedAsync(db, data);
        const int Total = 100 * Collection.BatchChunk;
        var queries = Enumerable.Range(0, Total).Select(i => (ReadOnlyMemory<float>)data[i % data.Length]).ToList();

        // The engine's own query counter (this database's meter only) shows how far the batch got; the first chunk
        // answered cancels the batch.
        using var cts = new CancellationTokenSource();
        long answered = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (ReferenceEquals(i.Meter, db.Metrics.Meter) && i.Name == "adanns.engine.search.queries") l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<long>((_, v, _, _) =>
        {
            if (Interlocked.Add(ref answered, v) >= Collection.BatchChunk) cts.Cancel();
        });
        listener.Start();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.SearchBatchAsync(queries, 10, cancellationToken: cts.Token));
        long seen = Interlocked.Read(ref answered);
        Assert.InRange(seen, Collection.BatchChunk, 2 * Collection.BatchChunk); // stopped after the chunk in flight, not after 100
    }

    [Fact]
    public async Task GetAsyncAndGetMany_ReadRecordsFromMemoryAndDisk()
    {
        const int Dim = 256;
        // 20,000 × 1 KiB records against the smallest in-memory log (16 MiB): the oldest are on disk.
        var rng = new Random(13);
        var rows = Enumerable.Range(0, 20_000).Select(_ => Enumerable.Range(0, Dim).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();
        await using var db = AdannsDatabase.Open(Dir, QuietOptions with { RecordMemoryBytes = 16L << 20, BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("big", Dim, Metric.L2, "IVF16"));
        for (int s = 0; s < rows.Length; s += 2000)
            await c.UpsertAsync(Enumerable.Range(s, 2000).Select(i => new VectorRecord((ulong)i, rows[i], i % 2 == 0 ? PayloadOf(i) : null)).ToList());

        var first = await c.GetAsync(0UL);
        Assert.Equal(rows[0], first!.Vector.ToArray());
        Assert.Equal("red", first.Payload!["color"].AsString);
        Assert.Null(await c.GetAsync(999_999UL));

        RecordId[] ids = [19_999UL, 3UL, 123_456UL, 10UL, "missing", 10_001UL];
        var got = await c.GetManyAsync(ids);
        Assert.Equal(ids.Length, got.Count);
        Assert.Equal(rows[19_999], got[0]!.Vector.ToArray());
        Assert.Equal(rows[3], got[1]!.Vector.ToArray());
        Assert.Null(got[2]);
        Assert.Equal(rows[10], got[3]!.Vector.ToArray());
        Assert.Null(got[4]);
        Assert.Equal(rows[10_001], got[5]!.Vector.ToArray());
        Assert.Null(got[5]!.Payload);

        // Every record, many windows at once, in order.
        var all = await c.GetManyAsync(Enumerable.Range(0, 1000).Select(i => (RecordId)(ulong)(i * 20)).ToList());
        for (int i = 0; i < 1000; i++) Assert.Equal(rows[i * 20], all[i]!.Vector.ToArray());

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.GetManyAsync(ids, cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await c.GetAsync(3UL, cancelled.Token));
    }

    [Fact]
    public async Task DisposeAsync_AppliesCheckpointsAndCloses()
    {
        var data = Vectors(300, D, 14);
        var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("d", D, Metric.L2, "IVF8"));
        var pending = c.UpsertAsync(Enumerable.Range(0, 300).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        await db.DisposeAsync();
        await pending; // accepted before the close: acknowledged by it
        var closed = await Assert.ThrowsAsync<AdannsException>(() => c.UpsertAsync(1UL, data[1]));
        Assert.Equal(AdannsErrorCode.Closed, closed.Code);
        await db.DisposeAsync(); // twice is fine

        var logs = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        await using var again = AdannsDatabase.Open(Dir, QuietOptions with { LoggerFactory = factory });
        Assert.Equal(300, again.GetCollection("d").Count);
        // Closing checkpointed: nothing left to replay.
        Assert.Contains(logs.Messages, m => m.Contains("Collection d opened: 300 records") && m.Contains("0 log entries replayed"));
    }

    /// <summary>
    /// A batch without a filter runs through the index's batch path one chunk (256 queries) at a time, with vectors too,
    /// for an IVF index (vectors read after the chunk's lock) and a PQ index (two-phase): the engine records one search
    /// duration per chunk (one per query on the single-query path). With vectors, a hit deleted while its chunk reads
    /// them keeps its vector (the chunk's snapshot).
    /// </summary>
    [Theory]
    [InlineData("IVF16")]
    [InlineData("IVF16,PQ4,Rerank16")]
    public async Task SearchBatch_RunsChunksThroughTheIndexBatchPath_WithVectorsFromItsSnapshot(string spec)
    {
        var data = Vectors(1500, D, 12);
        using var db = AdannsDatabase.Open(Dir, QuietOptions);
        var c = db.CreateCollection(new CollectionConfig("b", D, Metric.L2, spec) { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, data.Length).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        Assert.True(await c.WaitForIndexAsync());
        long durations = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (ReferenceEquals(i.Meter, db.Metrics.Meter) && i.Name == "adanns.engine.search.duration") l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref durations));
        listener.Start();
        var queries = Enumerable.Range(0, 300).Select(i => (ReadOnlyMemory<float>)data[i * 5]).ToList();

        foreach (bool withVectors in new[] { false, true })
        {
            Interlocked.Exchange(ref durations, 0);
            var batch = await c.SearchBatchAsync(queries, 5, null, null, withPayload: false, withVectors);
            Assert.Equal(2, Interlocked.Read(ref durations)); // 300 queries = two chunks, each one batch search
            for (int i = 0; i < queries.Count; i++)
            {
                Assert.Equal(c.Search(queries[i].Span, 5).Select(h => h.Id), batch[i].Hits.Select(h => h.Id));
                foreach (var h in batch[i].Hits)
                    Assert.Equal(withVectors ? data[(int)h.Id.Number] : [], h.Vector.ToArray());
            }
        }

        // A record deleted while the chunk reads its hits' vectors: the hit keeps the vector it had.
        using var entered = new ManualResetEventSlim(false);
        using var release = new ManualResetEventSlim(false);
        c.BeforeOutsideRead = () =>
        {
            c.BeforeOutsideRead = null;
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        };
        var held = c.SearchBatchAsync([data[40], data[41]], 3, null, null, withPayload: false, withVectors: true);
        Assert.True(entered.Wait(TimeSpan.FromSeconds(30)));
        var delete = c.DeleteAsync(40UL);
        Assert.Same(delete, await Task.WhenAny(delete, Task.Delay(TimeSpan.FromSeconds(20)))); // the write lock is free meanwhile
        Assert.True(await delete);
        release.Set();
        var snapshot = await held.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(40UL, snapshot[0].Hits[0].Id.Number);
        Assert.Equal(data[40], snapshot[0].Hits[0].Vector.ToArray());
        Assert.Equal(0, c.OutsideReadsMissing);
    }

    [Fact]
    public async Task LoggerAndMeters_SeeTrainingsWritesAndSearches()
    {
        var logs = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        await using var db = AdannsDatabase.Open(Dir, QuietOptions with { LoggerFactory = factory });
        var counts = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) =>
        {
            if (ReferenceEquals(i.Meter, db.Metrics.Meter)) l.EnableMeasurementEvents(i);
        };
        listener.SetMeasurementEventCallback<long>((i, v, _, _) =>
        {
            lock (counts) counts[i.Name] = counts.GetValueOrDefault(i.Name) + v;
        });
        listener.Start();

        var data = Vectors(1200, D, 15);
        var c = await TrainedAsync(db, data, "m");
        await c.DeleteAsync([1UL, 2UL, 99_999UL]);
        for (int i = 0; i < 5; i++) await c.SearchAsync(data[i], 3);
        // The training's swap asks for a checkpoint, taken in the background: wait for it (bounded).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !logs.Messages.Any(m => m.Contains("Collection m: checkpoint at LSN"))) await Task.Delay(20);
        listener.RecordObservableInstruments();

        lock (counts)
        {
            Assert.Equal(1200, counts["adanns.engine.records.upserted"]);
            Assert.Equal(2, counts["adanns.engine.records.deleted"]);
            Assert.Equal(5, counts["adanns.engine.search.queries"]);
            Assert.Equal(1, counts["adanns.engine.index.trainings"]);
            Assert.True(counts["adanns.engine.checkpoints"] >= 1);
            Assert.Equal(1198, counts["adanns.engine.collection.points"]);
        }
        Assert.Contains(logs.Messages, m => m.Contains("Collection m: index trained on 1200 vectors"));
        Assert.Contains(logs.Messages, m => m.Contains("Collection m: checkpoint at LSN"));
    }

    [Fact]
    public async Task AddAdanns_OpensValidatesAndDisposes()
    {
        var services = new ServiceCollection();
        services.AddAdanns(o =>
        {
            o.DataDirectory = Dir;
            o.CheckpointInterval = TimeSpan.FromHours(1);
        });
        await using (var sp = services.BuildServiceProvider())
        {
            var db = sp.GetRequiredService<IAdannsDatabase>();
            Assert.Same(sp.GetRequiredService<AdannsDatabase>(), db);
            var c = await db.CreateCollectionAsync(new CollectionConfig("di", 4, Metric.InnerProduct, "IVF4"));
            await c.UpsertAsync([new VectorRecord(1UL, new float[] { 1, 0, 0, 0 })]);
            Assert.Equal(["di"], await db.ListCollectionsAsync());
        }
        // The container closed the database: it opens again, with the record.
        using (var reopened = AdannsDatabase.Open(Dir, QuietOptions))
            Assert.Equal(1, reopened.GetCollection("di").Count);

        var bad = new ServiceCollection().AddAdanns(o =>
        {
            o.DataDirectory = Dir;
            o.ExactFilterSelectivity = 2;
        }).BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<IAdannsDatabase>());
        Assert.Contains("ExactFilterSelectivity must be in [0, 1] (got 2)", e.Message);
        var missing = new ServiceCollection().AddAdanns(_ => { }).BuildServiceProvider();
        Assert.Contains("DataDirectory is required", Assert.Throws<OptionsValidationException>(() => missing.GetRequiredService<AdannsDatabase>()).Message);
        var direct = Assert.Throws<AdannsException>(() => AdannsDatabase.Open(Dir, new DatabaseOptions { ImbalanceFactor = 0.5 }));
        Assert.Equal(AdannsErrorCode.InvalidConfiguration, direct.Code);
    }

    /// <summary>
    /// A write group whose oldest write waited 40 ms or more is logged (Debug) with where its time went: here the applier
    /// is held 60 ms before the commit, which shows as queued time (and only that group shows it).
    /// </summary>
    [Fact]
    public async Task SlowWriteGroup_IsLoggedWithWhereItsTimeWent()
    {
        var logs = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        await using var db = AdannsDatabase.Open(Dir, QuietOptions with { LoggerFactory = factory, BackgroundMaintenance = false });
        var c = db.CreateCollection(new CollectionConfig("slow", D, Metric.L2, "IVF4"));
        var data = Vectors(2, D, 21);
        static double Queued(string line) => double.Parse(System.Text.RegularExpressions.Regex.Match(line, @"queued (\d+(\.\d+)?)").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        await c.UpsertAsync(1UL, data[0]); // the first group may be slow too (JIT, the log's first commit)
        c.BeforeApplyHook = () => Thread.Sleep(60);
        await c.UpsertAsync(2UL, data[1]);
        c.BeforeApplyHook = null;
        await c.UpsertAsync(3UL, data[0]);
        await Task.Delay(100); // the applier logs a group just after acknowledging it
        var slow = logs.Messages.Where(m => m.Contains("Collection slow: slow write group of 1 batches", StringComparison.Ordinal)).ToList();
        var line = Assert.Single(slow, m => Queued(m) >= 55); // the held group only
        Assert.Matches(@"log commit \d+(\.\d+)?, store \d+(\.\d+)?, lock wait \d+(\.\d+)?, apply \d+(\.\d+)? ms", line);
    }

    /// <summary>Collects formatted log lines.</summary>
    private sealed class ListLoggerProvider : ILoggerProvider
    {
        private readonly List<string> _messages = [];

        public IReadOnlyList<string> Messages
        {
            get { lock (_messages) return _messages.ToArray(); }
        }

        public ILogger CreateLogger(string categoryName) => new ListLogger(this);

        public void Dispose() { }

        private sealed class ListLogger(ListLoggerProvider owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (owner._messages) owner._messages.Add(formatter(state, exception));
            }
        }
    }
}
