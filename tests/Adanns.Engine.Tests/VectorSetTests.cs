namespace Adanns.Engine.Tests;

public class VectorSetTests
{
    [Fact]
    public void RowsAndPrefixesAreZeroCopyViewsOfWhatWasAdded()
    {
        var rows = TestData.RandomRows(50, 12, 1);
        using var set = VectorSet.FromRows(rows, 12);
        Assert.Equal(50, set.Count);
        Assert.Equal(12, set.Dimension);
        for (int i = 0; i < 50; i++)
        {
            Assert.True(set.Row(i).SequenceEqual(rows.AsSpan(i * 12, 12)));
            Assert.True(set.Prefix(i, 5).SequenceEqual(rows.AsSpan(i * 12, 5)));
        }
        Assert.True(set.RowBlock(10, 3).SequenceEqual(rows.AsSpan(120, 36)));
    }

    [Fact]
    public void PrefixNormsAreCachedAndFollowAdds()
    {
        var rows = TestData.RandomRows(40, 16, 2);
        using var set = new VectorSet(16);
        set.AddRange(rows.AsSpan(0, 20 * 16));
        var norms = set.EnsurePrefixNorms(4).ToArray();
        Assert.Equal(20, norms.Length);
        set.AddRange(rows.AsSpan(20 * 16)); // grows the buffer; the cache must follow
        Assert.True(set.TryGetPrefixNorms(4, out var after));
        Assert.Equal(40, after.Length);
        for (int i = 0; i < 40; i++)
        {
            double expect = Math.Sqrt(rows.AsSpan(i * 16, 4).ToArray().Sum(v => (double)v * v));
            Assert.Equal(expect, after[i], 5);
        }
        Assert.Contains(4, set.CachedPrefixDims);
        Assert.False(set.TryGetPrefixNorms(8, out _));
    }

    [Fact]
    public void BadArgumentsGiveClearErrors()
    {
        using var set = new VectorSet(8);
        var e = Assert.Throws<ArgumentException>(() => set.Add(new float[7]));
        Assert.Contains("7 dims", e.Message);
        Assert.Throws<ArgumentException>(() => set.AddRange(new float[9]));
        set.Add(new float[8]);
        Assert.Throws<ArgumentOutOfRangeException>(() => set.Row(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => set.Prefix(0, 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => set.Prefix(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => set.RowBlock(0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VectorSet(0));
    }

    [Fact]
    public void DisposedSetRefusesAccess()
    {
        var set = VectorSet.FromRows(new float[16], 8);
        set.Dispose();
        Assert.Throws<ObjectDisposedException>(() => set.Row(0));
    }

    [Fact]
    public void ToArrayCanRenormalisePrefixes()
    {
        using var set = VectorSet.FromRows([3, 4, 100, 0, 0, 7], 3);
        var a = set.ToArray(2, normalize: true);
        Assert.Equal([0.6f, 0.8f, 0f, 0f], a);
    }
}
