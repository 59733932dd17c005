using Adanns.Engine.Clustering;
using Adanns.Engine.Transforms;

namespace Adanns.Engine.Indexes;

/// <summary>
/// Shares what several builds over the same rows would each learn again: the rotation of a <c>Rot</c> spec and the
/// coarse centroids of specs with the same rotation, list count, coarse dim, metric and k-means options. The tuner
/// builds five or six candidates on one sample; their rotations are the same matrix (learned from the same rows), and
/// two of them often share a coarse quantizer. Hand it to every build of one sample
/// (<see cref="VectorIndexBuildOptions.Cache"/>); the rows must not change while it is in use (keys are the
/// <see cref="VectorSet"/> instance, not its contents). Builds with it give the same index as builds without it.
/// </summary>
public sealed class TrainingCache
{
    private readonly Dictionary<(VectorSet Sample, int MaxSample), RotationTransform> _rotations = [];
    private readonly Dictionary<CoarseKey, float[]> _coarse = [];
    private readonly Lock _gate = new();

    private readonly record struct CoarseKey(VectorSet Sample, RotationTransform? Rotation, int Rows, int Dim, int NList, bool Spherical, KMeansOptions Options);

    /// <summary>Rotations learned so far.</summary>
    public int Rotations { get { lock (_gate) return _rotations.Count; } }

    /// <summary>Coarse quantizers trained so far.</summary>
    public int CoarseQuantizers { get { lock (_gate) return _coarse.Count; } }

    internal RotationTransform Rotation(VectorSet sample, int maxSample, Func<RotationTransform> learn)
    {
        // A rotation is learned from min(maxSample, count) evenly spaced rows: the same rows give the same matrix.
        maxSample = Math.Min(maxSample, sample.Count);
        lock (_gate)
            if (_rotations.TryGetValue((sample, maxSample), out var known)) return known;
        var fresh = learn();
        lock (_gate) return _rotations.TryAdd((sample, maxSample), fresh) ? fresh : _rotations[(sample, maxSample)];
    }

    /// <summary>The centroids for the key, trained by <paramref name="train"/> once; every caller gets its own copy.</summary>
    internal float[] Coarse(VectorSet sample, RotationTransform? rotation, int rows, int dim, int nlist, bool spherical, KMeansOptions options, Func<float[]> train)
    {
        var key = new CoarseKey(sample, rotation, rows, dim, nlist, spherical, options);
        lock (_gate)
            if (_coarse.TryGetValue(key, out var known)) return (float[])known.Clone();
        var fresh = train();
        lock (_gate) _coarse.TryAdd(key, (float[])fresh.Clone());
        return fresh;
    }
}
