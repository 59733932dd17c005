using Adanns.Protocol.V1;
using Grpc.Core;

namespace Adanns.Server.Tests;

internal static class Helpers
{
    public static async Task<RpcException> Status(StatusCode expected, Func<Task> call, string? messagePart = null)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(expected == e.StatusCode, $"expected {expected}, got {e.StatusCode}: {e.Status.Detail}");
        if (messagePart is not null) Assert.Contains(messagePart, e.Status.Detail, StringComparison.OrdinalIgnoreCase);
        return e;
    }

    /// <summary>Deterministic unit vectors: n×d.</summary>
    public static float[][] Vectors(int n, int d, int seed)
    {
        var rng = new Random(seed);
        var rows = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var v = new float[d];
            double s = 0;
            for (int j = 0; j < d; j++)
            {
                v[j] = (float)(rng.NextDouble() * 2 - 1);
                s += v[j] * v[j];
            }
            float inv = (float)(1 / Math.Sqrt(s));
            for (int j = 0; j < d; j++) v[j] *= inv;
            rows[i] = v;
        }
        return rows;
    }

    public static List<Point> Points(float[][] vectors, ulong firstId = 0)
    {
        var list = new List<Point>();
        for (int i = 0; i < vectors.Length; i++)
        {
            ulong id = firstId + (ulong)i;
            list.Add(Point.Create(id, vectors[i], new Dictionary<string, Value>
            {
                ["group"] = (long)(id % 4),
                ["tag"] = id % 2 == 0 ? "even" : "odd",
            }));
        }
        return list;
    }

    public static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 64)];
}
