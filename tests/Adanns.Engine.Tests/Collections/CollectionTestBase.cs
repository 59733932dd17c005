using Adanns.Engine.Collections;
using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;
using Adanns.Engine.Tests.IO;

namespace Adanns.Engine.Tests.Collections;

/// <summary>A fresh database directory per test (<see cref="TempDirectoryTest.Dir"/>), and clustered random data with known ids.</summary>
public abstract class CollectionTestBase : TempDirectoryTest
{
    /// <summary>n × d vectors around 20 random centres (so IVF lists are meaningful).</summary>
    protected static float[][] Vectors(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var centres = new float[20][];
        for (int c = 0; c < centres.Length; c++)
            centres[c] = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var rows = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var c = centres[rng.Next(centres.Length)];
            rows[i] = c.Select(x => x + (float)(rng.NextDouble() * 0.6 - 0.3)).ToArray();
        }
        return rows;
    }

    /// <summary>The top-k ids (record numbers) of every query row of <paramref name="queries"/> (n × D), default parameters.</summary>
    protected static long[][] SearchAll(Collection c, float[] queries, int D, int k)
    {
        int n = queries.Length / D;
        var result = new long[n][];
        for (int q = 0; q < n; q++)
            result[q] = c.Search(queries.AsSpan(q * D, D), k).Select(h => (long)h.Id.Number).ToArray();
        return result;
    }

    /// <summary>Recall@k of <paramref name="got"/> against exact ids <paramref name="truth"/> (n × k row numbers).</summary>
    protected static double Recall(long[][] got, int[] truth, int k)
    {
        double hits = 0;
        for (int q = 0; q < got.Length; q++)
        {
            var t = truth.AsSpan(q * k, k).ToArray();
            hits += got[q].Count(id => Array.IndexOf(t, (int)id) >= 0);
        }
        return hits / (got.Length * k);
    }

    protected static Dictionary<string, PayloadValue> PayloadOf(int i) => new()
    {
        ["color"] = (i % 3) switch { 0 => "red", 1 => "green", _ => "blue" },
        ["price"] = i % 100,
        ["rare"] = i % 50 == 0,
        ["tags"] = new PayloadValue[] { $"t{i % 7}", $"t{i % 11}" },
    };

    /// <summary>
    /// Recall@10 of 30 filtered searches (queries near random rows of <paramref name="data"/>, ids = row numbers)
    /// against exact filtered search by brute force; checks every search took <paramref name="expected"/> and every
    /// hit matches the filter.
    /// </summary>
    protected static double FilteredRecall(Collection c, float[][] data, Filter f, SearchPath expected, Random rng)
    {
        double found = 0, total = 0;
        for (int q = 0; q < 30; q++)
        {
            var query = data[rng.Next(data.Length)].Select(x => x + (float)(rng.NextDouble() * 0.1)).ToArray();
            var got = c.Search(query, 10, null, f, withPayload: true, out var path);
            Assert.Equal(expected, path);
            Assert.All(got, h => Assert.True(f.Matches(h.Payload), $"{h.Id} does not match {f}"));
            var truth = Enumerable.Range(0, data.Length).Where(i => f.Matches(PayloadOf(i)))
                .OrderBy(i => L2(query, data[i])).Take(10).Select(i => (ulong)i).ToHashSet();
            found += got.Count(h => truth.Contains(h.Id.Number));
            total += truth.Count;
        }
        return found / total;
    }

    /// <summary>Squared L2 distance, plain scalar (the reference the tests rank by).</summary>
    protected static float L2(float[] a, float[] b)
    {
        float s = 0;
        for (int i = 0; i < a.Length; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
        return s;
    }

    protected static DatabaseOptions QuietOptions => new() { CheckpointInterval = TimeSpan.FromHours(1) };

}
