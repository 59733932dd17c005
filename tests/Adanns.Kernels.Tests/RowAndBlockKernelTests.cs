namespace Adanns.Kernels.Tests;

public class RowAndBlockKernelTests
{
    private static readonly int[] Dims = [1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 100, 128, 129, 384];
    private static readonly int[] Counts = [0, 1, 3, 4, 5, 8, 13];

    [Fact]
    public void DotRowsAndL2RowsMatchReferenceOnPrefixesWithStride()
    {
        var rng = new Random(3);
        foreach (int d in Dims)
            foreach (int extra in new[] { 0, 5 })
                foreach (int n in Counts)
                {
                    int stride = d + extra;
                    // Guarded so the last row's prefix ends at the guard page: no read past d.
                    int len = n == 0 ? 0 : (n - 1) * stride + d;
                    using var rowsBuf = new GuardedBuffer(len);
                    using var qBuf = new GuardedBuffer(d);
                    var rows = rowsBuf.Span;
                    var q = qBuf.Span;
                    Reference.Fill(rows, rng);
                    Reference.Fill(q, rng);
                    var dots = new float[n];
                    var l2s = new float[n];
                    RowKernels.DotRows(q, rows, stride, dots);
                    RowKernels.L2Rows(q, rows, stride, l2s);
                    for (int j = 0; j < n; j++)
                    {
                        var r = rows.Slice(j * stride, d);
                        Assert.True(Math.Abs(dots[j] - Reference.Dot(q, r)) <= Reference.Tol(Reference.AbsDot(q, r), d), $"dot d={d} n={n} j={j}");
                        double l2 = Reference.L2(q, r);
                        Assert.True(Math.Abs(l2s[j] - l2) <= Reference.Tol(l2, d), $"l2 d={d} n={n} j={j}");
                    }
                }
    }

    [Fact]
    public void DotBlockMatchesReferenceForAllEdgeShapes()
    {
        var rng = new Random(4);
        foreach (int d in Dims)
            foreach (int nq in new[] { 1, 3, 4, 5, 8, 9 })
                foreach (int nr in new[] { 1, 2, 4, 6, 8, 11 })
                {
                    int qStride = d + 3, rStride = d + 1, cStride = nr + 2;
                    using var qBuf = new GuardedBuffer((nq - 1) * qStride + d);
                    using var rBuf = new GuardedBuffer((nr - 1) * rStride + d);
                    Reference.Fill(qBuf.Span, rng);
                    Reference.Fill(rBuf.Span, rng);
                    var c = new float[nq * cStride];
                    c.AsSpan().Fill(float.NaN); // untouched padding must stay NaN
                    BlockKernels.DotBlock(qBuf.Span, qStride, nq, rBuf.Span, rStride, nr, d, c, cStride);
                    for (int i = 0; i < nq; i++)
                    {
                        for (int j = 0; j < nr; j++)
                        {
                            var q = qBuf.Span.Slice(i * qStride, d);
                            var r = rBuf.Span.Slice(j * rStride, d);
                            Assert.True(Math.Abs(c[i * cStride + j] - Reference.Dot(q, r)) <= Reference.Tol(Reference.AbsDot(q, r), d),
                                $"d={d} nq={nq} nr={nr} ({i},{j}): {c[i * cStride + j]} vs {Reference.Dot(q, r)}");
                        }
                        for (int j = nr; j < cStride && i * cStride + j < c.Length; j++)
                            Assert.True(float.IsNaN(c[i * cStride + j]), "padding was written");
                    }
                }
    }

    [Fact]
    public void ShapeErrorsAreReported()
    {
        Assert.Throws<ArgumentException>(() => RowKernels.DotRows(new float[8], new float[20], 4, new float[2])); // d > stride
        Assert.Throws<ArgumentException>(() => RowKernels.DotRows(new float[4], new float[10], 4, new float[3])); // too few floats
        Assert.Throws<ArgumentException>(() => BlockKernels.DotBlock(new float[8], 4, 2, new float[8], 4, 2, 4, new float[3], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => BlockKernels.DotBlock(new float[8], 4, 2, new float[8], 4, 2, 0, new float[4], 2));
    }
}
