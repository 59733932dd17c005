namespace Adanns.Kernels.Tests;

public class RaBitQKernelTests
{
    /// <summary>Random b-bit codes of n rows × d dims packed with a stride holding 96 extra bytes per block (factors).</summary>
    private static (byte[] Values, byte[] Blocks, int Stride) Codes(Random rng, int n, int d, int bits)
    {
        int stride = bits * RaBitQKernels.PlaneBytes(d) + 96;
        var values = new byte[n * d];
        for (int i = 0; i < values.Length; i++) values[i] = (byte)rng.Next(1 << bits);
        var blocks = new byte[RaBitQKernels.Blocks(n) * stride];
        for (int r = 0; r < n; r++) RaBitQKernels.WriteRow(blocks, stride, bits, r, values.AsSpan(r * d, d));
        return (values, blocks, stride);
    }

    /// <summary>A random 8-bit table for d dims (every entry, both copies equal, as <see cref="RaBitQKernels.QuantizeTable"/> writes).</summary>
    private static byte[] Table(Random rng, int d)
    {
        var lut = new float[RaBitQKernels.SubCodes(d) * RaBitQKernels.Entries];
        var q = new float[d];
        for (int j = 0; j < d; j++) q[j] = (float)(rng.NextDouble() * 2 - 0.8);
        RaBitQKernels.BuildTable(q, lut);
        var table = new byte[RaBitQKernels.TableBytes(d)];
        RaBitQKernels.QuantizeTable(lut, RaBitQKernels.SubCodes(d), table, out _);
        return table;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 15, 1)]
    [InlineData(32, 16, 1)]
    [InlineData(33, 17, 2)]
    [InlineData(33, 128, 1)]
    [InlineData(40, 192, 4)]
    [InlineData(17, 384, 1)]
    [InlineData(70, 384, 2)]
    [InlineData(23, 130, 3)]
    [InlineData(16, 100, 8)]
    [InlineData(5, 200, 4)]
    [InlineData(9, 1100, 1)]  // more than one 1,024-dim chunk of 16-bit sums
    [InlineData(3, 2048, 8)]  // the largest sums: every entry 127 would be 512·127·255
    public void ScanEqualsTheRowSumsOnEveryPath(int n, int d, int bits)
    {
        var rng = new Random(n * 1009 + d * 7 + bits);
        var (values, blocks, stride) = Codes(rng, n, d, bits);
        var table = Table(rng, d);
        int nb = RaBitQKernels.Blocks(n);
        var fast = new int[nb * RaBitQKernels.BlockRows];
        var scalar = new int[nb * RaBitQKernels.BlockRows];
        RaBitQKernels.Scan(blocks, stride, bits, d, nb, table, fast);
        RaBitQKernels.ScanScalar(blocks, stride, bits, d, nb, table, scalar);
        var zero = new byte[d];
        for (int r = 0; r < nb * RaBitQKernels.BlockRows; r++)
        {
            // Rows past n in the last block are zero codes.
            int expect = RaBitQKernels.RowSum(r < n ? values.AsSpan(r * d, d) : zero, bits, table);
            Assert.Equal(expect, scalar[r]);
            Assert.Equal(expect, fast[r]);
        }
    }

    [Theory]
    [InlineData(1, 384)]
    [InlineData(1, 1024)] // one whole chunk of 16-bit sums at the largest entries
    [InlineData(2, 1040)] // a chunk and a partial one
    [InlineData(8, 2048)]
    public void ScanTakesEntriesUpToMaxEntry(int bits, int d)
    {
        // Tables of MaxEntry and entries near it (the vector paths add a byte's two lookups in one byte and sum 16-bit
        // lanes over 1,024 dims), all-ones codes (every lookup at the last entry) and random codes.
        var rng = new Random(bits * 31 + d);
        int n = 64;
        var table = new byte[RaBitQKernels.TableBytes(d)];
        // Each sub-code's 16 entries are stored twice (32 bytes), as QuantizeTable writes them.
        for (int i = 0; i < table.Length; i += 32)
            for (int c = 0; c < 16; c++)
                table[i + c] = table[i + 16 + c] = (byte)(RaBitQKernels.MaxEntry - (rng.Next(4) == 0 ? rng.Next(8) : 0));
        int stride = bits * RaBitQKernels.PlaneBytes(d) + 96;
        var values = new byte[n * d];
        for (int i = 0; i < values.Length; i++) values[i] = i < d ? (byte)((1 << bits) - 1) : (byte)rng.Next(1 << bits);
        var blocks = new byte[RaBitQKernels.Blocks(n) * stride];
        for (int r = 0; r < n; r++) RaBitQKernels.WriteRow(blocks, stride, bits, r, values.AsSpan(r * d, d));
        var fast = new int[n];
        RaBitQKernels.Scan(blocks, stride, bits, d, RaBitQKernels.Blocks(n), table, fast);
        for (int r = 0; r < n; r++) Assert.Equal(RaBitQKernels.RowSum(values.AsSpan(r * d, d), bits, table), fast[r]);
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(3, 64)]
    [InlineData(8, 200)]
    public void TableSumsEstimateTheInnerProduct(int bits, int d)
    {
        // Σ_i 2^i·s_i / a + (2^b − 1)·bias ≈ ⟨u, q⟩ within m·(2^b − 1)·0.5/a (each entry off by at most half a step).
        var rng = new Random(bits * 13 + d);
        var q = new float[d];
        for (int j = 0; j < d; j++) q[j] = (float)(rng.NextDouble() * 2 - 1.2);
        int m = RaBitQKernels.SubCodes(d);
        var lut = new float[m * RaBitQKernels.Entries];
        RaBitQKernels.BuildTable(q, lut);
        var table = new byte[RaBitQKernels.TableBytes(d)];
        float a = RaBitQKernels.QuantizeTable(lut, m, table, out float bias);
        // The widest sub-code spans the whole range 0…MaxEntry, and no entry exceeds it (the scan relies on that).
        Assert.Equal(RaBitQKernels.MaxEntry, table.Max());
        var u = new byte[d];
        for (int t = 0; t < 50; t++)
        {
            double exact = 0;
            for (int j = 0; j < d; j++)
            {
                u[j] = (byte)rng.Next(1 << bits);
                exact += u[j] * q[j];
            }
            int top = (1 << bits) - 1;
            double estimate = RaBitQKernels.RowSum(u, bits, table) / a + top * bias;
            Assert.True(Math.Abs(estimate - exact) <= m * top * 0.5 / a + 1e-3, $"estimate {estimate} vs {exact}");
        }
    }

    [Theory]
    [InlineData(1, 64)]
    [InlineData(4, 130)]
    [InlineData(8, 7)]
    public void RowsReadBackAsWritten(int bits, int d)
    {
        var rng = new Random(bits * 31 + d);
        var (values, blocks, stride) = Codes(rng, 41, d, bits);
        var back = new byte[d];
        for (int r = 0; r < 41; r++)
        {
            RaBitQKernels.ReadRow(blocks, stride, bits, r, back);
            Assert.Equal(values.AsSpan(r * d, d).ToArray(), back);
        }
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        var table = new byte[RaBitQKernels.TableBytes(16)];
        var sums = new int[32];
        var codes = new byte[RaBitQKernels.PlaneBytes(16)];
        Assert.Throws<ArgumentOutOfRangeException>(() => RaBitQKernels.Scan(codes, codes.Length, 0, 16, 1, table, sums));
        Assert.Throws<ArgumentException>(() => RaBitQKernels.Scan(codes, codes.Length - 1, 1, 16, 1, table, sums)); // stride below a block
        Assert.Throws<ArgumentException>(() => RaBitQKernels.Scan(codes, codes.Length, 1, 16, 2, table, sums)); // too few codes
        Assert.Throws<ArgumentException>(() => RaBitQKernels.Scan(codes, codes.Length, 1, 32, 1, table, sums)); // too small a table
        Assert.Throws<ArgumentException>(() => RaBitQKernels.Scan(codes, codes.Length, 1, 16, 1, table, new int[31])); // too few sums
    }
}
