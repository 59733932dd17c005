using Adanns.Kernels;
using MathNet.Numerics.LinearAlgebra;

namespace Adanns.Engine.Transforms;

/// <summary>
/// An orthogonal rotation y = Rᵀx whose output dims are ordered by energy (the eigenvectors of the uncentred
/// second moment BᵀB of a sample, largest eigenvalue first). Rotating base and queries alike preserves every
/// inner product and L2 distance, yet puts most of the signal in the leading dims — so embeddings that were
/// not Matryoshka-trained get meaningful prefixes.
/// </summary>
/// <remarks>
/// Uncentred rather than PCA-centred on purpose: the transform must be a pure rotation (no shift), so inner
/// products are preserved and not only distances. The eigen-decomposition is MathNet's symmetric EVD.
/// </remarks>
public sealed class RotationTransform
{
    private readonly float[] _rt; // D×D row-major; row j is the j-th eigenvector (so y_j = row_j · x).

    private RotationTransform(int dimension, float[] rt, double[] eigenvalues)
    {
        Dimension = dimension;
        _rt = rt;
        Eigenvalues = eigenvalues;
    }

    /// <summary>Input and output dimension D.</summary>
    public int Dimension { get; }

    /// <summary>Eigenvalues of BᵀB/n in output-dim order (descending): the energy of each rotated dim.</summary>
    public IReadOnlyList<double> Eigenvalues { get; }

    /// <summary>The D×D matrix Rᵀ row-major (row j = eigenvector j), for serialisation.</summary>
    public ReadOnlySpan<float> MatrixRowMajor => _rt;

    /// <summary>Rebuilds a transform from a stored Rᵀ (D×D row-major) and eigenvalues.</summary>
    public static RotationTransform FromMatrix(int dimension, ReadOnlySpan<float> rtRowMajor, ReadOnlySpan<double> eigenvalues)
    {
        if (dimension <= 0) throw new ArgumentOutOfRangeException(nameof(dimension));
        if (rtRowMajor.Length != dimension * dimension)
            throw new ArgumentException($"A {dimension}-dim rotation needs {dimension * dimension} floats, got {rtRowMajor.Length}.");
        if (eigenvalues.Length != dimension)
            throw new ArgumentException($"Expected {dimension} eigenvalues, got {eigenvalues.Length}.");
        return new RotationTransform(dimension, rtRowMajor.ToArray(), eigenvalues.ToArray());
    }

    /// <summary>
    /// Learns the rotation from up to <paramref name="maxSample"/> rows of <paramref name="vectors"/>
    /// (an evenly spaced subset when there are more).
    /// </summary>
    public static RotationTransform Learn(VectorSet vectors, int maxSample = 100_000)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Count == 0)
            throw new ArgumentException("Cannot learn a rotation from an empty set.", nameof(vectors));
        if (maxSample <= 0) throw new ArgumentOutOfRangeException(nameof(maxSample));
        int D = vectors.Dimension;
        int n = Math.Min(maxSample, vectors.Count);

        // Transpose the sample (D rows of n values) so BᵀB is a D×D block product of contiguous rows. In tiles of 64
        // sample rows: each output row then gets 64 contiguous values per pass, instead of one write n floats away
        // from the last (which made this copy cost more than the product itself).
        var bt = new float[(long)D * n];
        const int Tile = 64;
        var tile = new float[Tile * D];
        for (int s0 = 0; s0 < n; s0 += Tile)
        {
            int rows = Math.Min(Tile, n - s0);
            for (int t = 0; t < rows; t++)
                vectors.Row((int)((long)(s0 + t) * vectors.Count / n)).CopyTo(tile.AsSpan(t * D, D));
            for (int j = 0; j < D; j++)
            {
                var dst = bt.AsSpan((int)((long)j * n + s0), rows);
                for (int t = 0; t < rows; t++) dst[t] = tile[t * D + j];
            }
        }
        var gram = new float[D * D];
        BlockKernels.DotBlock(bt, n, D, bt, n, D, n, gram, D);

        var m = Matrix<double>.Build.Dense(D, D, (i, j) => 0.5 * (gram[i * D + j] + gram[j * D + i]) / n);
        var evd = m.Evd(Symmetricity.Symmetric);
        var values = evd.EigenValues.Select(c => c.Real).ToArray();
        var order = Enumerable.Range(0, D).OrderByDescending(i => values[i]).ThenBy(i => i).ToArray();
        var rt = new float[D * D];
        var eig = new double[D];
        for (int j = 0; j < D; j++)
        {
            int src = order[j];
            eig[j] = values[src];
            // Fix each eigenvector's sign (largest component positive) so the result is deterministic.
            var v = evd.EigenVectors.Column(src);
            double sign = v[v.AbsoluteMaximumIndex()] < 0 ? -1 : 1;
            for (int i = 0; i < D; i++)
                rt[j * D + i] = (float)(sign * v[i]);
        }
        return new RotationTransform(D, rt, eig);
    }

    /// <summary>y = Rᵀx for one D-dim vector.</summary>
    public void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != Dimension || y.Length != Dimension)
            throw new ArgumentException($"Rotation is {Dimension}-dim; got input {x.Length} and output {y.Length}.");
        if (x.Overlaps(y))
            throw new ArgumentException("Input and output must not overlap; use ApplyInPlace.");
        RowKernels.DotRows(x, _rt, Dimension, y);
    }

    /// <summary>x = R·y: undoes <see cref="Apply(ReadOnlySpan{float}, Span{float})"/> (R is orthogonal, so its inverse is its transpose).</summary>
    public void Invert(ReadOnlySpan<float> y, Span<float> x)
    {
        int D = Dimension;
        if (x.Length != D || y.Length != D)
            throw new ArgumentException($"Rotation is {D}-dim; got input {y.Length} and output {x.Length}.");
        if (x.Overlaps(y))
            throw new ArgumentException("Input and output must not overlap.");
        // Row j of Rᵀ is column j of R: x = Σ_j y_j · (row j of Rᵀ).
        x.Clear();
        for (int j = 0; j < D; j++)
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(_rt.AsSpan(j * D, D), y[j], x, x);
    }

    /// <summary>Rotates n rows (n×D row-major) into <paramref name="output"/> (n×D).</summary>
    public void ApplyBatch(ReadOnlySpan<float> rows, Span<float> output)
    {
        int D = Dimension;
        if (rows.Length % D != 0 || output.Length != rows.Length)
            throw new ArgumentException($"Rows ({rows.Length} floats) must be n×{D} and the output the same size ({output.Length}).");
        if (rows.Overlaps(output))
            throw new ArgumentException("Input and output must not overlap.");
        int n = rows.Length / D;
        const int Block = 256;
        for (int s = 0; s < n; s += Block)
        {
            int m = Math.Min(Block, n - s);
            BlockKernels.DotBlock(rows.Slice(s * D, m * D), D, m, _rt, D, D, D, output.Slice(s * D, m * D), D);
        }
    }

    /// <summary>Returns a new set holding every row of <paramref name="vectors"/> rotated.</summary>
    public VectorSet Apply(VectorSet vectors)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        if (vectors.Dimension != Dimension)
            throw new ArgumentException($"Rotation is {Dimension}-dim; the set is {vectors.Dimension}-dim.", nameof(vectors));
        var result = new VectorSet(Dimension, vectors.Count);
        const int Block = 1024;
        var buf = new float[Block * Dimension];
        for (int s = 0; s < vectors.Count; s += Block)
        {
            int m = Math.Min(Block, vectors.Count - s);
            var outSpan = buf.AsSpan(0, m * Dimension);
            ApplyBatch(vectors.RowBlock(s, m), outSpan);
            result.AddRange(outSpan);
        }
        return result;
    }
}
