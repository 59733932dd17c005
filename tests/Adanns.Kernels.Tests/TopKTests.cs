namespace Adanns.Kernels.Tests;

public class TopKTests
{
    [Fact]
    public void SelectionEqualsFullSortIncludingTies()
    {
        var rng = new Random(5);
        foreach (int n in new[] { 0, 1, 2, 5, 10, 37, 100, 1000 })
            foreach (int k in new[] { 1, 3, 10, 50, 200 })
            {
                // Few distinct values force many ties; the order must then follow the id.
                var keys = Enumerable.Range(0, n).Select(_ => (float)rng.Next(20)).ToArray();
                var outK = new float[k];
                var outI = new int[k];
                int got = TopK.SelectSmallest(keys, outK, outI);
                var expected = keys.Select((key, id) => (key, id)).OrderBy(p => p.key).ThenBy(p => p.id).Take(k).ToArray();
                Assert.Equal(expected.Length, got);
                for (int i = 0; i < got; i++)
                {
                    Assert.Equal(expected[i].key, outK[i]);
                    Assert.Equal(expected[i].id, outI[i]);
                }
            }
    }

    [Fact]
    public void PushOrderDoesNotChangeTheResult()
    {
        var rng = new Random(6);
        var keys = Enumerable.Range(0, 500).Select(_ => (float)rng.Next(30)).ToArray();
        var perm = Enumerable.Range(0, 500).OrderBy(_ => rng.Next()).ToArray();
        var k1 = new float[25]; var i1 = new int[25];
        var k2 = new float[25]; var i2 = new int[25];
        var h1 = new TopKHeap(k1, i1);
        for (int j = 0; j < keys.Length; j++) h1.Push(keys[j], j);
        var h2 = new TopKHeap(k2, i2);
        foreach (int j in perm) h2.Push(keys[j], j);
        Assert.Equal(h1.SortBestFirst(), h2.SortBestFirst());
        Assert.Equal(i1, i2);
        Assert.Equal(k1, k2);
    }

    [Fact]
    public void OneHeapServesIntAndLongIdsAlike()
    {
        // The same keys and ids (as int and as long, shifted past the int range): the same kept set, the same order.
        var rng = new Random(8);
        var keys = Enumerable.Range(0, 500).Select(_ => (float)rng.Next(40)).ToArray(); // many ties: ids decide
        var ik = new float[25];
        var ii = new int[25];
        var lk = new float[25];
        var li = new long[25];
        var small = new TopKHeap(ik, ii);
        var large = new TopKHeap<long>(lk, li);
        const long Shift = 1L << 40;
        for (int j = 0; j < keys.Length; j++)
        {
            small.Push(keys[j], j);
            large.Push(keys[j], Shift + j);
        }
        Assert.Equal(small.SortBestFirst(), large.SortBestFirst());
        Assert.Equal(ik, lk);
        Assert.Equal(ii.Select(i => Shift + i), li);
        for (int j = 1; j < 25; j++) Assert.True(lk[j - 1] < lk[j] || (lk[j - 1] == lk[j] && li[j - 1] < li[j]));
    }

    [Fact]
    public void NaNKeysAreNeverKept()
    {
        var keys = new[] { float.NaN, 2f, float.NaN, 1f };
        var outK = new float[4];
        var outI = new int[4];
        int got = TopK.SelectSmallest(keys, outK, outI);
        Assert.Equal(2, got);
        Assert.Equal([3, 1], outI[..2]);
    }

    [Fact]
    public void RestoreResumesAnInterruptedScan()
    {
        var rng = new Random(7);
        var keys = Enumerable.Range(0, 300).Select(_ => (float)rng.NextDouble()).ToArray();
        var k = new float[10]; var ids = new int[10];
        var heap = new TopKHeap(k, ids);
        TopK.PushAll(ref heap, keys.AsSpan(0, 150), 0);
        int count = heap.Count;
        var resumed = new TopKHeap(k, ids);
        resumed.Restore(count);
        TopK.PushAll(ref resumed, keys.AsSpan(150), 150);
        int got = resumed.SortBestFirst();
        var expected = keys.Select((key, id) => (key, id)).OrderBy(p => p.key).Take(10).Select(p => p.id).ToArray();
        Assert.Equal(10, got);
        Assert.Equal(expected, ids);
    }

    [Fact]
    public void ThresholdIsInfiniteUntilFull()
    {
        var heap = new TopKHeap(new float[2], new int[2]);
        Assert.Equal(float.PositiveInfinity, heap.Threshold);
        heap.Push(5, 0);
        Assert.Equal(float.PositiveInfinity, heap.Threshold);
        heap.Push(3, 1);
        Assert.Equal(5, heap.Threshold);
        Assert.False(heap.Push(6, 2));
        Assert.True(heap.Push(4, 3));
        Assert.Equal(4, heap.Threshold);
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(5, 6)]
    [InlineData(10, 20)]
    [InlineData(100, 200)]
    [InlineData(200, 400)]
    public void ReservoirKeepsExactlyWhatTheHeapKeeps(int k, int capacity)
    {
        var rng = new Random(k * 7 + capacity);
        foreach (int n in new[] { 0, 1, k - 1, k, k + 1, 3 * capacity + 5, 5000 })
        {
            if (n < 0) continue;
            foreach (string order in new[] { "random", "ascending", "descending", "ties" })
            {
                var keys = Keys(n, order, rng);
                var ek = new float[k];
                var ei = new int[k];
                int expect = TopK.SelectSmallest(keys, ek, ei);
                var res = new TopKReservoir(k, new ulong[capacity]);
                for (int i = 0; i < n; i++) res.Push(keys[i], i);
                var gk = new float[k];
                var gi = new int[k];
                int got = res.SortBestFirst(gk, gi);
                Assert.Equal(expect, got);
                Assert.Equal(ek[..expect], gk[..got]);
                Assert.Equal(ei[..expect], gi[..got]);
                // Unsorted: the same set.
                var res2 = new TopKReservoir(k, new ulong[capacity]);
                for (int i = 0; i < n; i++) res2.Push(keys[i], i);
                var uk = new float[k];
                var ui = new int[k];
                int got2 = res2.TakeUnsorted(uk, ui);
                Assert.Equal(expect, got2);
                Assert.Equal(ei[..expect].Order(), ui[..got2].Order());
            }
        }
    }

    /// <summary>n keys in the named order, one of them NaN (n &gt; 3).</summary>
    private static float[] Keys(int n, string order, Random rng)
    {
        var keys = new float[n];
        for (int i = 0; i < n; i++)
            keys[i] = order switch
            {
                "ascending" => i,
                "descending" => n - i,
                "ties" => rng.Next(4) - 2, // negative keys and −0 too
                "equal" => 1f,
                // a few tiny keys far from a sample's stride: an estimate is fooled, a fallback must catch it
                "clustered" => i % 97 == 5 ? -1f - i : 10f + (float)rng.NextDouble(),
                // only the rows a 128-entry sample reads are small: the estimate guesses too low, the fallback decides
                "sampled-low" => i % Math.Max(1, n / 128) == 0 ? -1f : 10f + i,
                _ => (float)rng.NextDouble(),
            };
        if (n > 3) keys[n / 2] = float.NaN;
        return keys;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(192)]
    [InlineData(700)]
    public void SelectSmallestOfAnArrayKeepsExactlyTheKBest(int k)
    {
        // The sampled threshold must never change the set: same (key, id) set as a heap over every key, whatever the
        // order, ties, NaN, −0, and the sizes on both sides of the sampling cut-off (n < 512, k > n/4).
        var rng = new Random(k);
        foreach (int n in new[] { 1, k, 300, 511, 512, 2048, 2049, 9000 })
        {
            foreach (string order in new[] { "random", "ascending", "descending", "ties", "equal", "clustered", "sampled-low" })
            {
                var keys = Keys(n, order, rng);
                if (n > 9) keys[n / 3] = -0f;
                var ek = new float[k];
                var ei = new int[k];
                int expect = TopK.SelectSmallest(keys, ek, ei);
                var gk = new float[k];
                var gi = new int[k];
                int got = TopKReservoir.SelectSmallest(keys, k, new ulong[n + 1], gk, gi);
                Assert.Equal(expect, got);
                Assert.Equal(ei[..expect].Order(), gi[..got].Order());
                for (int j = 0; j < got; j++) Assert.Equal(keys[gi[j]] + 0f, gk[j]); // keys travel with their ids (−0 as +0)
            }
        }
        Assert.Throws<ArgumentException>(() => TopKReservoir.SelectSmallest(new float[8], 2, new ulong[8], new float[2], new int[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => TopKReservoir.SelectSmallest(new float[8], 0, new ulong[9], new float[2], new int[2]));
    }

    [Fact]
    public void SelectInPlaceMovesTheSmallestWordsToTheFront()
    {
        var rng = new Random(9);
        foreach (int n in new[] { 0, 1, 2, 3, 17, 256, 1000 })
        foreach (int nth in new[] { 0, 1, n / 3, n - 1, n }.Where(x => x >= 0 && x <= n).Distinct())
        {
            var words = Enumerable.Range(0, n).Select(_ => (ulong)rng.Next(50)).ToArray(); // many duplicates
            var sorted = words.Order().ToArray();
            TopKReservoir.SelectInPlace(words, nth);
            Assert.Equal(sorted[..nth], words[..nth].Order());
            Assert.Equal(sorted, words.Order()); // a permutation: nothing lost or duplicated
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => TopKReservoir.SelectInPlace(new ulong[3], 4));
    }

    [Fact]
    public void ReservoirThresholdNeverDropsACandidateThatBelongs()
    {
        var rng = new Random(3);
        var res = new TopKReservoir(32, new ulong[64]);
        var seen = new List<float>();
        for (int i = 0; i < 3000; i++)
        {
            float key = (float)rng.NextDouble();
            seen.Add(key);
            res.Push(key, i);
            // Once k keys were kept, at least k seen keys are at or under the threshold.
            float threshold = res.Threshold;
            if (!float.IsPositiveInfinity(threshold))
                Assert.True(seen.Count(x => x <= threshold) >= 32);
        }
        Assert.Throws<ArgumentException>(() => new TopKReservoir(4, new ulong[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TopKReservoir(0, new ulong[4]));
    }
}
