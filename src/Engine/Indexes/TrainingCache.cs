using Adanns.Engine.Clustering;
using Adanns.Engine.Transforms;

namespace Adanns.Engine.Indexes;

/// <summary>
/// Shares what several builds over the same rows would each learn again: the rotation of a <c>Rot</c> spec and the
/// coarse centroids of specs with the same rotation, list count, coarse dim, metric and k-means options. The tuner
/// builds five or six candidates on one sample; their rotations are the same matrix (learned from the same rows), the
/// rows they train on and file are the same rows rotated by it, and two of them often share a coarse quantizer. Hand it to every build of one sample
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

    /// <summary>Samples held rotated so far (every row once per rotation; see <see cref="RotatedRows"/>).</summary>
    public int RotatedSamples { get { lock (_gate) return _rotatedRows.Count; } }

    /// <summary>Coarse quantizers trained so far.</summary>
    public int CoarseQuantizers { get { lock (_gate) return _coarse.Count; } }

    private readonly Dictionary<(VectorSet Sample, RotationTransform Rotation), float[]> _rotatedRows = [];

    /// <summary>Rows cached rotated at most (floats): 256 MB, so a sample of tens of thousands of wide vectors fits.</summary>
    internal const long MaxRotatedFloats = 64L << 20;

    /// <summary>
    /// Every row of <paramref name="sample"/> rotated by <paramref name="rotation"/> (row-major, as
    /// <see cref="RotationTransform.ApplyBatch"/> gives them), computed once: each candidate's training subset and bulk
    /// add read them instead of rotating the sample again (a D² product per row: at D = 784 six candidates spent ~4 s
    /// rotating the same 20,000 rows). Null when the sample is larger than <see cref="MaxRotatedFloats"/>.
    /// </summary>
    internal float[]? RotatedRows(VectorSet sample, RotationTransform rotation)
    {
        long floats = (long)sample.Count * sample.Dimension;
        if (floats > MaxRotatedFloats || floats == 0) return null;
        lock (_gate)
            if (_rotatedRows.TryGetValue((sample, rotation), out var known)) return known;
        var rows = new float[floats];
        rotation.ApplyBatch(sample.RowBlock(0, sample.Count), rows);
        lock (_gate) return _rotatedRows.TryAdd((sample, rotation), rows) ? rows : _rotatedRows[(sample, rotation)];
    }

    /// <summary>Builds over <paramref name="sample"/> (learning from up to <paramref name="maxSample"/> rows) use <paramref name="rotation"/> instead of learning one.</summary>
    internal void UseRotation(VectorSet sample, int maxSample, RotationTransform rotation)
    {
        lock (_gate) _rotations[(sample, Math.Min(maxSample, sample.Count))] = rotation;
    }

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
