using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// The payload index (field → value → keys, built on the first filter that names a field, then maintained by the
/// applier) must answer exactly what <see cref="Filter.Matches"/> answers on the live payloads: through upserts that
/// replace a record's payload, deletes, list fields, strict and open ranges, And / Or / Not, and a reopen.
/// </summary>
public class PayloadIndexTests : CollectionTestBase
{
    private static readonly string[] Colors = ["red", "green", "blue", "Red"];

    private static Dictionary<string, PayloadValue>? RandomPayload(Random rng)
    {
        if (rng.Next(10) == 0) return null;
        var p = new Dictionary<string, PayloadValue>();
        if (rng.Next(5) > 0) p["color"] = Colors[rng.Next(Colors.Length)];
        if (rng.Next(5) > 0) p["price"] = rng.Next(4) == 0 ? rng.Next(20) + 0.5 : rng.Next(20) - 5; // negatives, halves
        if (rng.Next(4) == 0) p["price"] = -0.0;                                                      // equals 0
        if (rng.Next(3) == 0) p["tags"] = Enumerable.Range(0, rng.Next(4)).Select(_ => (PayloadValue)$"t{rng.Next(5)}").ToArray();
        if (rng.Next(3) == 0) p["nums"] = new PayloadValue[] { rng.Next(10), rng.Next(10), "7" };     // mixed list, maybe repeated
        if (rng.Next(2) == 0) p["flag"] = rng.Next(2) == 0;
        if (rng.Next(6) == 0) p["color"] = 3;                                                          // same field, another kind
        return p;
    }

    private static readonly Filter[] Filters =
    [
        Filter.Eq("color", "red"),
        Filter.In("color", "red", "blue", 3),
        Filter.Eq("price", 0),
        Filter.Range("price", 0, 10),
        Filter.Range("price", 0, 10, minInclusive: false, maxInclusive: false),
        Filter.Range("price", min: 4.5),
        Filter.Range("price", max: -1),
        Filter.Range("nums", 7, 7),
        Filter.Eq("nums", "7"),
        Filter.In("tags", "t1", "t3"),
        Filter.Eq("flag", true),
        Filter.Eq("flag", 1),
        !Filter.Eq("color", "red"),
        Filter.Eq("color", "green") & Filter.Range("price", 2, 8),
        Filter.Eq("color", "blue") | Filter.Eq("tags", "t0") | Filter.Eq("nothing", 1),
        !(Filter.Eq("flag", false) | Filter.Range("nums", max: 3)) & Filter.In("tags", "t2", "t4"),
    ];

    [Fact]
    public async Task FilteredSearchAndFindIds_MatchFilterMatches_ThroughWritesDeletesAndReopen()
    {
        const int D = 4, N = 600;
        var rng = new Random(11);
        var payloads = new Dictionary<ulong, Dictionary<string, PayloadValue>?>();
        var vectors = new Dictionary<ulong, float[]>();
        var options = QuietOptions;
        var config = new CollectionConfig("p", D, Metric.L2, "IVF8") { TrainThreshold = 1_000_000 }; // exact: k = N returns every match

        async Task Write(Collection c, int count)
        {
            for (int b = 0; b < count; b += 50)
            {
                var batch = new List<VectorRecord>();
                var ids = new HashSet<ulong>();
                for (int j = 0; j < 50; j++)
                {
                    ulong id = (ulong)rng.Next(N);
                    if (!ids.Add(id)) continue;
                    var v = Enumerable.Range(0, D).Select(_ => (float)rng.NextDouble()).ToArray();
                    var p = RandomPayload(rng);
                    batch.Add(new VectorRecord(id, v, p));
                    payloads[id] = p;
                    vectors[id] = v;
                }
                await c.UpsertAsync(batch);
                var dead = Enumerable.Range(0, 5).Select(_ => (ulong)rng.Next(N)).Distinct().Where(i => !ids.Contains(i)).ToList();
                await c.DeleteAsync(dead.Select(i => (RecordId)i).ToList());
                foreach (var i in dead)
                {
                    payloads.Remove(i);
                    vectors.Remove(i);
                }
            }
        }

        void Check(Collection c, string when)
        {
            foreach (var f in Filters)
            {
                var expected = payloads.Where(e => f.Matches(e.Value)).Select(e => e.Key).OrderBy(i => i).ToList();
                var found = c.FindIds(f).Select(i => i.Number).OrderBy(i => i).ToList();
                Assert.True(expected.SequenceEqual(found), $"{when}: FindIds({f}) gave {found.Count} ids, expected {expected.Count}");
                var hits = c.Search(new float[D], N, null, f, withPayload: true);
                Assert.True(expected.SequenceEqual(hits.Select(h => h.Id.Number).OrderBy(i => i)), $"{when}: Search({f}) gave {hits.Length} hits, expected {expected.Count}");
            }
        }

        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.CreateCollection(config);
            await Write(c, 400);
            Check(c, "after the first writes (fields indexed now)");
            await Write(c, 800); // replaces payloads and deletes records of indexed fields
            Check(c, "after writes to indexed fields");
        }
        using (var db = AdannsDatabase.Open(Dir, options))
        {
            var c = db.GetCollection("p");
            Check(c, "after reopen");
            await Write(c, 200);
            Check(c, "after writes following reopen");
        }
    }
}
