namespace Adanns.Engine.Data;

/// <summary>A generated data set: base rows, query rows and their cluster labels.</summary>
public sealed class SyntheticDataset : IDisposable
{
    internal SyntheticDataset(VectorSet baseVectors, VectorSet queries, int[] baseLabels, int[] queryLabels)
    {
        Base = baseVectors;
        Queries = queries;
        BaseLabels = baseLabels;
        QueryLabels = queryLabels;
    }

    /// <summary>The database rows (N×D).</summary>
    public VectorSet Base { get; }

    /// <summary>The query rows (nq×D), drawn from the same distribution, disjoint from the base.</summary>
    public VectorSet Queries { get; }

    /// <summary>Cluster label of each base row.</summary>
    public int[] BaseLabels { get; }

    /// <summary>Cluster label of each query.</summary>
    public int[] QueryLabels { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        Base.Dispose();
        Queries.Dispose();
    }
}

/// <summary>
/// Seeded Matryoshka-like data: Gaussian clusters whose spread in dimension j decays like (1+j)^−½, so the
/// leading dims carry most of the signal (coarse structure first, detail later), as in an MRL embedding.
/// Rows are L2-normalised, like the output of most embedding models. Deterministic for a given seed.
/// </summary>
public static class SyntheticMatryoshka
{
    /// <summary>Options of the generator; the defaults make the built-in default data set.</summary>
    /// <param name="Count">Base rows N.</param>
    /// <param name="Dimension">Full dimension D.</param>
    /// <param name="Clusters">Number of clusters (= labels).</param>
    /// <param name="Queries">Query rows.</param>
    /// <param name="Seed">Random seed.</param>
    /// <param name="Noise">Within-cluster spread relative to the spread of cluster centres.</param>
    public sealed record Options(int Count = 20_000, int Dimension = 128, int Clusters = 64, int Queries = 500, int Seed = 42, float Noise = 0.6f);

    /// <summary>Generates a data set.</summary>
    public static SyntheticDataset Generate(Options? options = null)
    {
        var o = options ?? new Options();
        if (o.Count < 0 || o.Queries < 0) throw new ArgumentOutOfRangeException(nameof(options), "Counts must be non-negative.");
        if (o.Dimension <= 0) throw new ArgumentOutOfRangeException(nameof(options), "Dimension must be positive.");
        if (o.Clusters <= 0) throw new ArgumentOutOfRangeException(nameof(options), "Clusters must be positive.");
        if (!(o.Noise >= 0) || float.IsInfinity(o.Noise)) throw new ArgumentOutOfRangeException(nameof(options), "Noise must be a finite non-negative number.");

        int D = o.Dimension;
        var scale = new float[D];
        for (int j = 0; j < D; j++)
            scale[j] = 1f / MathF.Sqrt(1 + j);

        var rng = new Random(o.Seed);
        var centres = new float[o.Clusters * D];
        for (int c = 0; c < o.Clusters; c++)
            for (int j = 0; j < D; j++)
                centres[c * D + j] = (float)Gaussian(rng) * scale[j];

        // Separate streams for base and queries so changing the query count leaves the base unchanged.
        var baseSet = Draw(o.Count, D, o.Clusters, centres, scale, o.Noise, new Random(o.Seed * 7919 + 1), out var baseLabels);
        var querySet = Draw(o.Queries, D, o.Clusters, centres, scale, o.Noise, new Random(o.Seed * 7919 + 2), out var queryLabels);
        return new SyntheticDataset(baseSet, querySet, baseLabels, queryLabels);
    }

    private static VectorSet Draw(int n, int D, int clusters, float[] centres, float[] scale, float noise, Random rng, out int[] labels)
    {
        var set = new VectorSet(D, n);
        labels = new int[n];
        var row = new float[D];
        for (int i = 0; i < n; i++)
        {
            int c = rng.Next(clusters);
            labels[i] = c;
            for (int j = 0; j < D; j++)
                row[j] = centres[c * D + j] + noise * scale[j] * (float)Gaussian(rng);
            Kernels.VectorMath.NormalizeInPlace(row);
            set.Add(row);
        }
        return set;
    }

    /// <summary>Standard normal by Box–Muller (System.Random has no Gaussian).</summary>
    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble();
        double u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
