using Adanns.Engine.Data;

namespace Adanns.Engine.Tests;

internal static class TestData
{
    /// <summary>Uniform random rows in [−1, 1), n×d.</summary>
    public static float[] RandomRows(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n * d];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    public static SyntheticDataset Small(int n = 3000, int d = 64, int queries = 100, int seed = 11) =>
        SyntheticMatryoshka.Generate(new SyntheticMatryoshka.Options(n, d, Clusters: 24, Queries: queries, Seed: seed));
}
