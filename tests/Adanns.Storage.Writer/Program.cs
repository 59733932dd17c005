// Crash-test writer and verifier for durable collections.
//
//   write  <dbdir> <journal> <writers> <cycle> [spec]   writes batches of 4 records from N writers until killed (index
//                                                spec: IVF16 unless given, e.g. a PQ spec); re-upserts acknowledged batches
//                                                unchanged now and then (an id's record replaced by a new one), and prints
//                                                "S checkpoint=0|1 training=0|1" every 20 ms after "ready" when
//                                                ADANNS_CRASH_STATUS=1 (what a kill interrupted)
//   verify <dbdir> <journal>                     reopens the database and checks the journal against it
//   acks   <dbdir> <ackfile> <count>             upserts <count> records one at a time (payload mark = "mark-NNNNNN"),
//                                                appending "ACK mark-NNNNNN" to <ackfile> with one write() after each
//                                                acknowledgement (for the strace durability test)
//
// Every batch is journaled "T <first>" before it is submitted and "A <first>" after it is acknowledged; a
// delete of a batch is journaled "D <first>" before and "X <first>" after. The journal is appended with a
// write() per line, which survives kill -9 (the page cache is the kernel's, not the process's). The verifier
// checks: every acknowledged batch is present unless a delete of it was attempted; every acknowledged delete
// is absent; no record exists that was never attempted (no phantom); every batch is all-or-nothing; every
// present record has exactly the vector and payload that was written.
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

const int Dim = 32;
const int BatchSize = 4;

if (args.Length >= 5 && args[0] == "write") return await Write(args[1], args[2], int.Parse(args[3]), int.Parse(args[4]), args.Length >= 6 ? args[5] : "IVF16");
if (args.Length >= 3 && args[0] == "verify") return await Verify(args[1], args[2]);
if (args.Length >= 4 && args[0] == "acks") return await Acks(args[1], args[2], int.Parse(args[3]));
Console.Error.WriteLine("usage: write <dbdir> <journal> <writers> <cycle> | verify <dbdir> <journal>");
return 2;

static float[] VectorOf(ulong id)
{
    var v = new float[Dim];
    var rng = new Random((int)(id * 2654435761UL % int.MaxValue));
    for (int j = 0; j < Dim; j++) v[j] = (float)(rng.NextDouble() * 2 - 1);
    return v;
}

static async Task<int> Acks(string dir, string ackPath, int count)
{
    // No background maintenance: the trace then holds only the writes' own log traffic.
    using var db = AdannsDatabase.Open(dir, new DatabaseOptions { BackgroundMaintenance = false, CheckpointOnDispose = false });
    var c = db.CreateCollection(new CollectionConfig("sync", 4, Metric.L2, "IVF4"));
    using var acks = new FileStream(ackPath, FileMode.Create, FileAccess.Write, FileShare.ReadWrite, bufferSize: 1);
    for (int i = 0; i < count; i++)
    {
        string mark = $"mark-{i:D6}";
        await c.UpsertAsync((ulong)i, new float[] { i, 1, 2, 3 }, new Dictionary<string, PayloadValue> { ["mark"] = mark });
        acks.Write(System.Text.Encoding.ASCII.GetBytes($"ACK {mark}\n")); // one write() syscall, after the acknowledgement
    }
    return 0;
}

static async Task<int> Write(string dir, string journalPath, int writers, int cycle, string spec)
{
    using var db = AdannsDatabase.Open(dir, new DatabaseOptions { CheckpointInterval = TimeSpan.FromSeconds(1) });
    var c = db.TryGetCollection("crash", out var existing) ? existing! : db.CreateCollection(new CollectionConfig("crash", Dim, Metric.L2, spec) { TrainThreshold = 2000 });

    using var journal = new StreamWriter(new FileStream(journalPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
    var gate = new object();
    void Log(string line) { lock (gate) journal.WriteLine(line); }
    Console.WriteLine("ready");
    if (Environment.GetEnvironmentVariable("ADANNS_CRASH_STATUS") == "1")
    {
        _ = Task.Run(async () =>
        {
            while (true)
            {
                Console.WriteLine($"S checkpoint={(c.CheckpointInProgress ? 1 : 0)} training={(c.TrainingInProgress ? 1 : 0)}");
                await Task.Delay(20);
            }
        });
    }
    var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
    {
        var rng = new Random(cycle * 1000 + w);
        var acked = new List<ulong>();
        for (ulong seq = 0; ; seq++)
        {
            ulong first = (ulong)cycle * 1_000_000_000UL + (ulong)w * 10_000_000UL + seq * BatchSize;
            if (acked.Count > 4 && rng.Next(8) == 0)
            {
                int at = rng.Next(acked.Count);
                ulong victim = acked[at];
                acked.RemoveAt(at);
                Log($"D {victim}");
                await c.DeleteAsync(Enumerable.Range(0, BatchSize).Select(i => (RecordId)(victim + (ulong)i)).ToArray());
                Log($"X {victim}");
                continue;
            }
            if (acked.Count > 4 && rng.Next(8) == 0)
            {
                // Replace an acknowledged batch's records by identical ones (new record keys, the old ones become garbage).
                ulong again = acked[rng.Next(acked.Count)];
                await c.UpsertAsync(BatchOf(again, w));
                continue;
            }
            var batch = BatchOf(first, w);
            Log($"T {first}");
            await c.UpsertAsync(batch);
            Log($"A {first}");
            acked.Add(first);
        }
    })).ToArray();
    await Task.WhenAny(tasks);
    foreach (var t in tasks) if (t.IsFaulted) Console.Error.WriteLine(t.Exception);
    return 1;
}

static VectorRecord[] BatchOf(ulong first, int writer) => Enumerable.Range(0, BatchSize).Select(i => new VectorRecord(first + (ulong)i, VectorOf(first + (ulong)i),
    new Dictionary<string, PayloadValue> { ["batch"] = (double)first, ["writer"] = writer })).ToArray();

static async Task<int> Verify(string dir, string journalPath)
{
    var tried = new HashSet<ulong>();
    var acked = new HashSet<ulong>();
    var delTried = new HashSet<ulong>();
    var delAcked = new HashSet<ulong>();
    foreach (var line in File.ReadLines(journalPath))
    {
        var parts = line.Split(' ');
        if (parts.Length != 2 || !ulong.TryParse(parts[1], out ulong id)) continue; // a torn last line
        switch (parts[0])
        {
            case "T": tried.Add(id); break;
            case "A": acked.Add(id); break;
            case "D": delTried.Add(id); break;
            case "X": delAcked.Add(id); break;
        }
    }
    var started = System.Diagnostics.Stopwatch.StartNew();
    using var db = AdannsDatabase.Open(dir);
    double openMs = started.Elapsed.TotalMilliseconds;
    if (db.Quarantined.Count > 0)
    {
        Console.WriteLine($"FAIL quarantined: {db.Quarantined[0].Reason}");
        return 1;
    }
    if (!db.TryGetCollection("crash", out var c))
    {
        Console.WriteLine(acked.Count == 0 ? "OK nothing acknowledged, no collection" : "FAIL collection missing");
        return acked.Count == 0 ? 0 : 1;
    }
    int errors = 0, present = 0, lost = 0, phantoms = 0, torn = 0, wrong = 0, resurrected = 0;
    foreach (ulong first in tried)
    {
        int here = 0;
        for (ulong i = 0; i < BatchSize; i++)
        {
            var r = await c!.GetAsync(first + i);
            if (r is null) continue;
            here++;
            if (!r.Vector.Span.SequenceEqual(VectorOf(first + i)) || r.Payload is null || r.Payload["batch"].AsNumber != first) wrong++;
        }
        present += here;
        if (here != 0 && here != BatchSize) torn++;
        if (acked.Contains(first) && !delTried.Contains(first) && here == 0) lost++;
        if (delAcked.Contains(first) && here != 0) resurrected++;
    }
    if (c!.Count != present) phantoms = (int)(c.Count - present); // records that were never attempted
    errors = lost + torn + wrong + resurrected + Math.Abs(phantoms);
    Console.WriteLine($"{(errors == 0 ? "OK" : "FAIL")} batches tried={tried.Count} acked={acked.Count} deletes acked={delAcked.Count} records={c.Count} " +
        $"lost={lost} torn={torn} wrong={wrong} resurrected={resurrected} phantoms={phantoms} open_ms={openMs:F0}");
    return errors == 0 ? 0 : 1;
}
