using Adanns.Engine.Clustering;
using Adanns.Engine.Transforms;
using Adanns.Kernels;
using MathNet.Numerics.LinearAlgebra;

namespace Adanns.Engine.Quantization;

/// <summary>Options for OPQ training.</summary>
/// <param name="Iterations">Alternations of (train PQ, Procrustes rotation update). Measured on debian-minilm
/// (20,000 rows, OPQ16 at 384 dims): quantization MSE 0.491 for plain PQ, 0.475 after the eigenvalue-allocation start,
/// 0.443 after 4 alternations and 0.344 after 16 — convergence is slow, so the default is 25 (FAISS uses 50).</param>
/// <param name="PqIterations">Lloyd iterations of each sub-quantizer per alternation (warm-started).</param>
/// <param name="FinalPqIterations">Lloyd iterations of the final PQ on the learned rotation.</param>
/// <param name="Seed">Seeds the sub-quantizers' k-means.</param>
/// <param name="Threads">Threads for k-means assignment and encoding (0 = all cores).</param>
public sealed record OpqOptions(int Iterations = 25, int PqIterations = 4, int FinalPqIterations = 20, int Seed = 1234, int Threads = 0);

/// <summary>
/// Optimized product quantization (Ge et al., 2013; the non-parametric variant FAISS implements): learn an
/// orthogonal R so that PQ codes of xR lose less, by alternating (1) PQ training on the rotated sample and (2) the
/// orthogonal Procrustes solution R = UVᵀ of Xᵀ·decode(encode(XR)) = UΣVᵀ (MathNet's SVD).
/// </summary>
/// <remarks>
/// Starts from the parametric solution of the same paper (eigenvalue allocation): the principal directions of the
/// sample, dealt to the sub-quantizers so that the product of each one's eigenvalues is balanced. Measured here, a
/// random start (FAISS's choice) needed many alternations just to get back to plain PQ's error on energy-ordered
/// data, while this start is better than PQ before the first alternation.
/// </remarks>
public static class OpqTrainer
{
    /// <summary>
    /// Learns the rotation and the final product quantizer on <paramref name="n"/> rows of <paramref name="x"/>
    /// (n×d). The returned rotation maps a d-dim x to y = Rᵀx (its <see cref="RotationTransform.Eigenvalues"/>
    /// report each output dim's mean energy on the sample); the quantizer codes y.
    /// </summary>
    public static (RotationTransform Rotation, ProductQuantizer Quantizer) Train(float[] x, int n, int d, int m, OpqOptions? options = null,
        CancellationToken cancellationToken = default, int bits = 8)
    {
        ArgumentNullException.ThrowIfNull(x);
        var o = options ?? new OpqOptions();
        if (d % m != 0) throw new ArgumentException($"OPQ{m} needs d divisible by M; d = {d}.");
        if (n < 1 << bits) throw new ArgumentException($"OPQ needs at least {1 << bits} training vectors; got {n}.", nameof(n));
        if (x.Length < (long)n * d) throw new ArgumentException($"{n} rows of {d} dims need {(long)n * d} floats.", nameof(x));

        var xt = Transpose(x, n, d);
        var rt = EigenAllocation(xt, n, d, m); // Rᵀ, row-major
        var y = new float[(long)n * d];
        var yhat = new float[(long)n * d];
        var codes = new byte[(long)n * m];
        ProductQuantizer? pq = null;
        for (int it = 0; it < o.Iterations; it++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Rotate(x, n, d, rt, y);
            // The first alternation trains from scratch a little longer, later ones refine the previous codebooks.
            var km = new KMeansOptions(MaxIterations: pq is null ? 2 * o.PqIterations : o.PqIterations, Tolerance: 0, Seed: o.Seed, Threads: o.Threads);
            pq = ProductQuantizer.Train(y, n, d, m, km, pq, cancellationToken, bits);
            pq.EncodeBatch(y, n, codes, o.Threads);
            for (int i = 0; i < n; i++)
                pq.Decode(codes.AsSpan(i * m, m), yhat.AsSpan(i * d, d));
            rt = Procrustes(xt, Transpose(yhat, n, d), n, d);
        }
        Rotate(x, n, d, rt, y);
        var final = new KMeansOptions(MaxIterations: o.FinalPqIterations, Seed: o.Seed, Threads: o.Threads);
        var quantizer = ProductQuantizer.Train(y, n, d, m, final, pq, cancellationToken);
        var energy = new double[d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                energy[j] += (double)y[i * d + j] * y[i * d + j];
        for (int j = 0; j < d; j++) energy[j] /= n;
        return (RotationTransform.FromMatrix(d, rt, energy), quantizer);
    }

    /// <summary>y = Rᵀx for every row (n×d), through the blocked GEMM kernel.</summary>
    internal static void Rotate(float[] x, int n, int d, float[] rt, float[] y)
    {
        const int Block = 256;
        for (int s = 0; s < n; s += Block)
        {
            int rows = Math.Min(Block, n - s);
            BlockKernels.DotBlock(x.AsSpan(s * d, rows * d), d, rows, rt, d, d, d, y.AsSpan(s * d, rows * d), d);
        }
    }

    private static float[] Transpose(float[] x, int n, int d)
    {
        var t = new float[(long)n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                t[(long)j * n + i] = x[(long)i * d + j];
        return t;
    }

    /// <summary>argmin over orthogonal R of ‖XR − Ŷ‖: R = UVᵀ with XᵀŶ = UΣVᵀ. Returns Rᵀ = VUᵀ row-major.</summary>
    private static float[] Procrustes(float[] xt, float[] yt, int n, int d)
    {
        var c = new float[d * d];
        BlockKernels.DotBlock(xt, n, d, yt, n, d, n, c, d); // c[a, b] = Σ_i x_ia ŷ_ib
        var cm = Matrix<double>.Build.Dense(d, d, (a, b) => c[a * d + b]);
        var svd = cm.Svd(computeVectors: true);
        var r = svd.U * svd.VT; // d×d
        var rt = new float[d * d];
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++)
                rt[a * d + b] = (float)r[b, a];
        return rt;
    }

    /// <summary>
    /// Parametric OPQ: eigenvectors of the second moment XᵀX/n, largest first, each given to the sub-quantizer (with
    /// room left) whose eigenvalue product is smallest so far — balancing the product balances the distortion bound.
    /// Returns Rᵀ row-major, row b·dsub + s = the s-th direction of sub-quantizer b.
    /// </summary>
    private static float[] EigenAllocation(float[] xt, int n, int d, int m)
    {
        var gram = new float[d * d];
        BlockKernels.DotBlock(xt, n, d, xt, n, d, n, gram, d);
        var cov = Matrix<double>.Build.Dense(d, d, (a, b) => 0.5 * (gram[a * d + b] + gram[b * d + a]) / n);
        var evd = cov.Evd(Symmetricity.Symmetric);
        var values = evd.EigenValues.Select(c => Math.Max(c.Real, 1e-12)).ToArray();
        var order = Enumerable.Range(0, d).OrderByDescending(i => values[i]).ThenBy(i => i).ToArray();
        int dsub = d / m;
        var logProduct = new double[m];
        var filled = new int[m];
        var rt = new float[d * d];
        foreach (int e in order)
        {
            int best = -1;
            for (int b = 0; b < m; b++)
                if (filled[b] < dsub && (best < 0 || logProduct[b] < logProduct[best])) best = b;
            var v = evd.EigenVectors.Column(e);
            int row = best * dsub + filled[best]++;
            for (int i = 0; i < d; i++) rt[row * d + i] = (float)v[i];
            logProduct[best] += Math.Log(values[e]);
        }
        return rt;
    }
}
