namespace Adanns.Kernels.Tests;

public class PqKernelTests
{
    [Theory]
    [InlineData(1, 1, 256)]
    [InlineData(4, 2, 256)]
    [InlineData(8, 3, 256)]
    [InlineData(16, 4, 256)]
    [InlineData(32, 3, 256)]
    [InlineData(48, 8, 256)]
    [InlineData(64, 6, 256)]
    [InlineData(2, 1, 16)]  // 4-bit codebooks: one register per table row
    [InlineData(16, 2, 16)]
    [InlineData(64, 3, 16)]
    [InlineData(8, 2, 32)]  // any other size takes the portable loop
    public void TableMatchesScalarReferenceForBothMetrics(int m, int dsub, int ksub)
    {
        var rng = new Random(m * 31 + dsub + ksub);
        int d = m * dsub;
        var q = new float[d];
        var cbT = new float[d * ksub];
        var bias = new float[m * ksub];
        Reference.Fill(q, rng);
        Reference.Fill(cbT, rng);
        Reference.Fill(bias, rng);
        var lut = new float[m * ksub];
        foreach (var (scale, useBias) in new[] { (1f, false), (-2f, true) })
        {
            PqKernels.BuildTable(q, cbT, m, dsub, ksub, scale, useBias ? bias : default, lut);
            for (int j = 0; j < m; j++)
                for (int c = 0; c < ksub; c++)
                {
                    double expect = useBias ? bias[j * ksub + c] : 0;
                    double abs = Math.Abs(expect);
                    for (int t = 0; t < dsub; t++)
                    {
                        double term = (double)scale * q[j * dsub + t] * cbT[(j * dsub + t) * ksub + c];
                        expect += term;
                        abs += Math.Abs(term);
                    }
                    Assert.True(Math.Abs(lut[j * ksub + c] - expect) <= Reference.Tol(abs, dsub + 1), $"m={m} j={j} c={c}");
                }
        }
    }

    [Fact]
    public void ScanSumsTableEntriesForEveryCountAndWidth()
    {
        var rng = new Random(5);
        foreach (int m in new[] { 1, 3, 8, 16, 32, 48, 64 })
        {
            var lut = new float[m * PqKernels.Ksub];
            Reference.Fill(lut, rng);
            foreach (int n in new[] { 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 100 })
            {
                var codes = new byte[n * m + 3]; // longer than needed: only n·m bytes may be read
                rng.NextBytes(codes);
                var dist = new float[n];
                PqKernels.Scan(codes, m, lut, dist);
                for (int i = 0; i < n; i++)
                {
                    double expect = 0, abs = 0;
                    for (int j = 0; j < m; j++)
                    {
                        double v = lut[j * 256 + codes[i * m + j]];
                        expect += v;
                        abs += Math.Abs(v);
                    }
                    Assert.True(Math.Abs(dist[i] - expect) <= Reference.Tol(abs, m), $"m={m} n={n} i={i}");
                }
            }
        }
    }

    [Fact]
    public void ShapeErrorsAreReported()
    {
        var lut = new float[4 * 256];
        Assert.Throws<ArgumentException>(() => PqKernels.Scan(new byte[7], 4, lut, new float[2]));
        Assert.Throws<ArgumentException>(() => PqKernels.Scan(new byte[8], 4, new float[100], new float[2]));
        Assert.Throws<ArgumentException>(() => PqKernels.BuildTable(new float[7], new float[8 * 256], 4, 2, 1f, default, lut));
        Assert.Throws<ArgumentOutOfRangeException>(() => PqKernels.Scan(new byte[8], 0, lut, new float[2]));
    }
}
