using Adanns.Engine.Collections;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// The untrained collection's exact store keeps rows in blocks of 65,536 (one array of count × D floats faulted the
/// collection past 2³¹ floats, found by the 10M-vector scale run): rows across block boundaries are added, moved by
/// deletes and searched exactly as by brute force.
/// </summary>
public class FlatStoreBlockTests
{
    [Fact]
    public void RowsAcrossBlocksAreStoredMovedAndSearchedExactly()
    {
        const int D = 3, N = 140_000; // three blocks, the first grown from 64 rows by doubling
        var rng = new Random(5);
        var rows = new float[N][];
        var store = new FlatStore(D);
        for (int i = 0; i < N; i++)
        {
            rows[i] = [(float)rng.NextDouble(), (float)rng.NextDouble(), (float)rng.NextDouble()];
            store.Add(i, rows[i]);
        }
        // Delete a spread of rows, including ones in the last block, so rows move across blocks into the holes.
        var live = new HashSet<long>(Enumerable.Range(0, N).Select(i => (long)i));
        for (int i = 0; i < N; i += 3)
        {
            Assert.True(store.Remove(i));
            live.Remove(i);
        }
        Assert.Equal(live.Count, store.Count);
        var got = new float[D];
        foreach (long id in new long[] { 1, 65_535, 65_537, 131_071, 131_072, 139_999 })
        {
            if (!live.Contains(id)) continue;
            store.Read(id, got);
            Assert.Equal(rows[id], got);
        }
        for (int q = 0; q < 5; q++)
        {
            var query = new[] { (float)rng.NextDouble(), (float)rng.NextDouble(), (float)rng.NextDouble() };
            var ids = new long[10];
            var scores = new float[10];
            Assert.Equal(10, store.Search(query, 10, Metric.L2, null, ids, scores));
            var expected = live.OrderBy(id => L2(query, rows[id])).ThenBy(id => id).Take(10).ToArray();
            Assert.Equal(expected, ids);
        }
    }

    private static double L2(float[] a, float[] b) => a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum();
}
