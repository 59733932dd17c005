using Adanns.Engine.Collections;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests.Collections;

/// <summary>A fresh database directory per test, and clustered random data with known ids.</summary>
public abstract class CollectionTestBase : IDisposable
{
    protected CollectionTestBase()
    {
        Dir = Path.Combine(Path.GetTempPath(), "adanns-db-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
    }

    protected string Dir { get; }

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

    protected static Dictionary<string, PayloadValue> PayloadOf(int i) => new()
    {
        ["color"] = (i % 3) switch { 0 => "red", 1 => "green", _ => "blue" },
        ["price"] = i % 100,
        ["rare"] = i % 50 == 0,
        ["tags"] = new PayloadValue[] { $"t{i % 7}", $"t{i % 11}" },
    };

    protected static DatabaseOptions QuietOptions => new() { CheckpointInterval = TimeSpan.FromHours(1) };

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
    }
}
