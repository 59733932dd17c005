namespace Adanns.Engine.Tests.IO;

/// <summary>A fresh directory per test class instance, removed afterwards.</summary>
public abstract class TempDirectoryTest : IDisposable
{
    protected TempDirectoryTest()
    {
        Dir = Path.Combine(Path.GetTempPath(), "adanns-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
    }

    protected string Dir { get; }

    protected string PathOf(string name) => Path.Combine(Dir, name);

    protected static float[] RandomFloats(int seed, int count, bool integral = false)
    {
        var rng = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
            values[i] = integral ? rng.Next(0, 256) : (float)(rng.NextDouble() * 4 - 2);
        return values;
    }

    protected static int[] RandomInts(int seed, int count)
    {
        var rng = new Random(seed);
        var values = new int[count];
        for (int i = 0; i < values.Length; i++)
            values[i] = rng.Next(-1_000_000, 1_000_000);
        return values;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
            // A leaked temp directory is not worth failing a test over.
        }
        GC.SuppressFinalize(this);
    }
}
