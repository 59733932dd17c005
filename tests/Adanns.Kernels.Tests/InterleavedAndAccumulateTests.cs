namespace Adanns.Kernels.Tests;

public class InterleavedAndAccumulateTests
{
    [Fact]
    public void InterleavedDotMultiEqualsOneQueryAtATimeBitForBit()
    {
        // k-means assignment scores four points per table pass; its choices must not depend on that grouping, so
        // each query's dots must equal Dot's exactly (same summation order), on every path, block count and prefix.
        var rng = new Random(43);
        foreach (int stored in new[] { 1, 7, 16, 33, 64, 130 })
            foreach (int nb in new[] { 0, 1, 2, 3, 5, 8 })
            foreach (bool blockMajor in new[] { true, false })
            {
                int rows = nb * 16;
                var data = new float[rows * stored];
                Reference.Fill(data, rng);
                var layout = blockMajor ? TileLayout.BlockMajor(stored) : TileLayout.GroupMajor(Math.Max(1, nb));
                using var blocks = new GuardedBuffer(nb == 0 ? 0 : InterleavedKernels.Groups(stored) * nb * InterleavedKernels.TileFloats);
                for (int r = 0; r < rows; r++)
                    InterleavedKernels.WriteRow(blocks.Span, layout, r, data.AsSpan(r * stored, stored));
                foreach (int d in new[] { 1, stored / 2 + 1, stored }.Where(x => x <= stored).Distinct())
                    for (int m = 1; m <= 4; m++)
                    {
                        var queries = new float[m * d];
                        Reference.Fill(queries, rng);
                        int stride = rows + 3; // a stride past the row count: rows of the output must not overlap
                        var multi = new float[Math.Max(1, (m - 1) * stride + rows)];
                        Array.Fill(multi, float.NaN);
                        InterleavedKernels.DotMulti(queries, d, m, blocks.Span, layout, nb, multi, stride);
                        for (int i = 0; i < m; i++)
                        {
                            var single = new float[rows];
                            InterleavedKernels.Dot(queries.AsSpan(i * d, d), blocks.Span, layout, nb, single, default);
                            for (int r = 0; r < rows; r++)
                                Assert.True(single[r] == multi[i * stride + r], $"stored={stored} nb={nb} d={d} m={m} i={i} r={r}: {multi[i * stride + r]} vs {single[r]}");
                        }
                    }
            }
        Assert.Throws<ArgumentOutOfRangeException>(() => InterleavedKernels.DotMulti(new float[5 * 16], 16, 5, new float[256], TileLayout.BlockMajor(16), 1, new float[5 * 16], 16));
    }

    [Fact]
    public void InterleavedDotAndNormsMatchReferenceForEveryPrefixAndBlockCount()
    {
        var rng = new Random(41);
        foreach (int stored in new[] { 1, 7, 16, 33, 64, 130 })
            foreach (int nb in new[] { 0, 1, 3, 4, 5, 9 })
            foreach (bool blockMajor in new[] { true, false })
            {
                int rows = nb * 16;
                var data = new float[rows * stored];
                Reference.Fill(data, rng);
                var stride = blockMajor ? TileLayout.BlockMajor(stored) : TileLayout.GroupMajor(Math.Max(1, nb));
                using var blocks = new GuardedBuffer(nb == 0 ? 0 : InterleavedKernels.Groups(stored) * nb * InterleavedKernels.TileFloats);
                for (int r = 0; r < rows; r++)
                    InterleavedKernels.WriteRow(blocks.Span, stride, r, data.AsSpan(r * stored, stored));
                foreach (int d in new[] { 1, stored / 2 + 1, stored }.Where(x => x <= stored).Distinct())
                {
                    var q = new float[d];
                    Reference.Fill(q, rng);
                    var dots = new float[rows];
                    var norms = new float[rows];
                    InterleavedKernels.Dot(q, blocks.Span, stride, nb, dots, norms);
                    var dotsOnly = new float[rows];
                    InterleavedKernels.Dot(q, blocks.Span, stride, nb, dotsOnly, default);
                    // The non-AVX-512 path, exercised directly so machines without AVX-512 are covered too.
                    var portable = new float[rows];
                    var portableNorms = new float[rows];
                    InterleavedKernels.DotPortable(q, blocks.Span, stride, nb, portable, portableNorms);
                    for (int r = 0; r < rows; r++)
                    {
                        var x = data.AsSpan(r * stored, d);
                        Assert.True(Math.Abs(dots[r] - Reference.Dot(q, x)) <= Reference.Tol(Reference.AbsDot(q, x), d), $"dot stored={stored} nb={nb} d={d} r={r}");
                        Assert.Equal(dots[r], dotsOnly[r]);
                        Assert.True(Math.Abs(portable[r] - dots[r]) <= Reference.Tol(Reference.AbsDot(q, x), d));
                        Assert.True(Math.Abs(portableNorms[r] - norms[r]) <= Reference.Tol(norms[r], d));
                        double n2 = Reference.Dot(x, x);
                        Assert.True(Math.Abs(norms[r] - n2) <= Reference.Tol(n2, d), $"norm stored={stored} d={d} r={r}");
                    }
                    var back = new float[stored];
                    if (rows > 0)
                    {
                        InterleavedKernels.ReadRow(blocks.Span, stride, rows - 1, back);
                        Assert.Equal(data.AsSpan((rows - 1) * stored, stored).ToArray(), back);
                    }
                }
            }
    }

    [Fact]
    public void DotRowsAccumulateAddsToWhatIsThere()
    {
        var rng = new Random(42);
        foreach (int d in new[] { 1, 5, 16, 17, 40, 64, 100 })
            foreach (int n in new[] { 0, 1, 2, 3, 7 })
            {
                int stride = d + 3;
                using var rows = new GuardedBuffer(n == 0 ? 0 : (n - 1) * stride + d);
                Reference.Fill(rows.Span, rng);
                var q = new float[d];
                Reference.Fill(q, rng);
                var dots = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
                var norms = Enumerable.Range(0, n).Select(i => 2f * i).ToArray();
                RowKernels.DotRowsAccumulate(q, rows.Span, stride, dots, norms);
                var dotsOnly = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
                RowKernels.DotRowsAccumulate(q, rows.Span, stride, dotsOnly, default);
                for (int j = 0; j < n; j++)
                {
                    var x = rows.Span.Slice(j * stride, d);
                    Assert.True(Math.Abs(dots[j] - (j + Reference.Dot(q, x))) <= Reference.Tol(Reference.AbsDot(q, x) + j, d), $"d={d} j={j}");
                    Assert.True(Math.Abs(norms[j] - (2 * j + Reference.Dot(x, x))) <= Reference.Tol(Reference.Dot(x, x) + 2 * j, d));
                    Assert.Equal(dots[j], dotsOnly[j]);
                }
            }
    }

    [Fact]
    public void InterleavedShapeErrorsAreReported()
    {
        Assert.Throws<ArgumentException>(() => InterleavedKernels.Dot(new float[8], new float[512], new TileLayout(100, 256), 2, new float[32], default)); // stride < a tile
        Assert.Throws<ArgumentException>(() => InterleavedKernels.Dot(new float[20], new float[300], TileLayout.BlockMajor(32), 1, new float[16], default)); // 2 groups need 512
        Assert.Throws<ArgumentException>(() => InterleavedKernels.Dot(new float[4], new float[256], TileLayout.BlockMajor(16), 1, new float[8], default));   // output too small
    }
}

public class InterleavedU8Tests
{
    [Fact]
    public void U8ScanMatchesDecodedReferenceOnEveryPath()
    {
        var rng = new Random(43);
        foreach (int stored in new[] { 3, 16, 40, 64 })
            foreach (int nb in new[] { 1, 2, 4, 5, 9 })
            foreach (bool blockMajor in new[] { true, false })
            {
                int rows = nb * 16;
                var stride = blockMajor ? TileLayout.BlockMajor(stored) : TileLayout.GroupMajor(nb);
                var codes = new byte[InterleavedKernels.Groups(stored) * nb * InterleavedKernels.TileFloats];
                var raw = new byte[rows * stored];
                rng.NextBytes(raw);
                for (int r = 0; r < rows; r++)
                    InterleavedKernels.WriteRow(codes, stride, r, raw.AsSpan(r * stored, stored));
                var lo = Enumerable.Range(0, stored).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
                var step = Enumerable.Range(0, stored).Select(_ => (float)(rng.NextDouble() * 0.01 + 1e-4)).ToArray();
                foreach (int d in new[] { 1, stored / 2 + 1, stored }.Distinct())
                {
                    var q = new float[d];
                    Reference.Fill(q, rng);
                    var dots = new float[rows];
                    var norms = new float[rows];
                    var scaledDots = new float[rows];
                    var portable = new float[rows];
                    var portableNorms = new float[rows];
                    InterleavedKernels.DotU8(q, lo, step, codes, stride, nb, dots, norms);
                    var qs = q.Select((v, j) => v * step[j]).ToArray();
                    InterleavedKernels.DotU8(qs, default, default, codes, stride, nb, scaledDots, default);
                    InterleavedKernels.DotU8Portable(q, lo, step, codes, stride, nb, portable, portableNorms);
                    // Several queries per code load must give each query's single-query result.
                    for (int g = 1; g <= 4; g++)
                    {
                        var many = new float[g * d];
                        for (int i = 0; i < g; i++) qs.CopyTo(many.AsSpan(i * d, d));
                        many[(g - 1) * d] += 0.5f; // make the last query differ
                        var multi = new float[g * rows];
                        InterleavedKernels.DotU8Multi(many, d, g, codes, stride, nb, multi, rows);
                        for (int i = 0; i < g; i++)
                        {
                            var single = new float[rows];
                            InterleavedKernels.DotU8(many.AsSpan(i * d, d), default, default, codes, stride, nb, single, default);
                            for (int r = 0; r < rows; r++)
                                Assert.True(Math.Abs(single[r] - multi[i * rows + r]) <= 1e-3f * (1 + Math.Abs(single[r])), $"multi g={g} i={i} r={r}");
                        }
                    }
                    double offset = Enumerable.Range(0, d).Sum(j => (double)q[j] * lo[j]);
                    for (int r = 0; r < rows; r++)
                    {
                        var x = Enumerable.Range(0, d).Select(j => lo[j] + step[j] * raw[r * stored + j]).ToArray();
                        double dot = Reference.Dot(q, x), n2 = Reference.Dot(x, x);
                        double tol = Reference.Tol(Reference.AbsDot(q, x) + 1, d);
                        Assert.True(Math.Abs(dots[r] - dot) <= tol, $"decoded dot stored={stored} nb={nb} d={d} r={r}");
                        Assert.True(Math.Abs(norms[r] - n2) <= Reference.Tol(n2, d), $"norm r={r}");
                        Assert.True(Math.Abs(scaledDots[r] + offset - dot) <= 10 * tol, $"scaled dot r={r}: {scaledDots[r] + offset} vs {dot}");
                        Assert.True(Math.Abs(portable[r] - dot) <= tol && Math.Abs(portableNorms[r] - n2) <= Reference.Tol(n2, d), $"portable r={r}");
                    }
                }
            }
    }
}
