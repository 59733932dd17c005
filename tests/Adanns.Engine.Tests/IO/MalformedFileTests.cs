using System.Buffers.Binary;
using Adanns.Engine.IO;
using PureHDF;

namespace Adanns.Engine.Tests.IO;

public sealed class MalformedFileTests : TempDirectoryTest
{
    private static byte[] Vecs(params float[][] rows)
    {
        var bytes = new List<byte>();
        foreach (var row in rows)
        {
            bytes.AddRange(BitConverter.GetBytes(row.Length));
            foreach (var v in row) bytes.AddRange(BitConverter.GetBytes(v));
        }
        return bytes.ToArray();
    }

    private static byte[] Bin(uint rows, uint dim, int valueCount, int elementSize = 4)
    {
        var bytes = new byte[8 + valueCount * elementSize];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, rows);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), dim);
        return bytes;
    }

    private static float[] Row(int dim, float value = 0.5f) => Enumerable.Repeat(value, dim).ToArray();

    private DatasetFormatException Rejected(string name, byte[] content, bool ints = false)
    {
        string path = PathOf(name);
        File.WriteAllBytes(path, content);
        return RejectedPath(path, ints);
    }

    private static DatasetFormatException RejectedPath(string path, bool ints = false)
    {
        var ex = ints
            ? Assert.Throws<DatasetFormatException>(() => VectorFile.ReadInts(path))
            : Assert.Throws<DatasetFormatException>(() => VectorFile.ReadVectors(path).Dispose());
        Assert.Contains(Path.GetFileName(path.Split('#')[0]), ex.Message);
        return ex;
    }

    private static void AssertAt(DatasetFormatException ex, long offset, string fragment)
    {
        Assert.Equal(offset, ex.Offset);
        Assert.Contains($"at byte {offset}:", ex.Message);
        Assert.Contains(fragment, ex.Message);
    }

    [Fact]
    public void Fvecs_truncated_last_row()
    {
        var bytes = Vecs(Row(4), Row(4), Row(4));
        var ex = Rejected("t.fvecs", bytes[..^5]);
        AssertAt(ex, 40, "truncated last row");
    }

    [Fact]
    public void Fvecs_inconsistent_dims_in_the_middle_and_at_the_end()
    {
        AssertAt(Rejected("mid.fvecs", Vecs(Row(4), Row(4), Row(3), Row(4), Row(4))), 40, "row 2 declares dim 3 but row 0 had 4");
        AssertAt(Rejected("end.fvecs", Vecs(Row(4), Row(4), Row(3))), 40, "row 2 declares dim 3 but row 0 had 4");
    }

    [Theory]
    [InlineData(0, "dim 0")]
    [InlineData(-7, "dim -7")]
    [InlineData(1 << 21, "above the supported maximum")]
    public void Fvecs_bad_first_dim(int dim, string fragment)
    {
        var bytes = new byte[64];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, dim);
        AssertAt(Rejected("d.fvecs", bytes), 0, fragment);
    }

    [Fact]
    public void Empty_and_tiny_vecs_files()
    {
        AssertAt(Rejected("e.fvecs", []), 0, "empty");
        AssertAt(Rejected("s.bvecs", [1, 0]), 0, "too short");
    }

    [Fact]
    public void Bvecs_truncated_and_ivecs_inconsistent()
    {
        var bvecs = new byte[] { 3, 0, 0, 0, 1, 2, 3, 3, 0, 0, 0, 4 };
        AssertAt(Rejected("t.bvecs", bvecs), 7, "truncated last row: row 1 has 5 bytes");
        var ivecs = Vecs(Row(2), Row(5));
        AssertAt(Rejected("g.ivecs", ivecs, ints: true), 12, "row 1 declares dim 5");
    }

    [Fact]
    public void Bin_rows_times_dim_larger_than_file()
    {
        AssertAt(Rejected("big.fbin", Bin(100, 4, 40)), 0, "header declares 100 rows × 4 dims (1600 bytes of float32) but only 160 bytes follow");
        AssertAt(Rejected("big.u8bin", Bin(uint.MaxValue, 4, 0, 1)), 0, "rows");
        AssertAt(Rejected("big.ibin", Bin(3, 3, 8), ints: true), 0, "only 32 bytes follow");
    }

    [Fact]
    public void Bin_trailing_bytes_and_short_header()
    {
        AssertAt(Rejected("tail.fbin", Bin(2, 4, 9)), 40, "4 unexpected bytes");
        AssertAt(Rejected("short.fbin", [1, 0, 0, 0, 4]), 0, "shorter than the 8-byte header");
    }

    [Theory]
    [InlineData(0u, "dim 0")]
    [InlineData(unchecked((uint)-3), "dim -3")]
    [InlineData(2_000_000u, "above the supported maximum")]
    public void Bin_bad_dim(uint dim, string fragment) =>
        AssertAt(Rejected("d.fbin", Bin(1, dim, 4)), 4, fragment);

    [Fact]
    public void Npy_bad_magic_and_version()
    {
        AssertAt(Rejected("m.npy", "\x93NUMPX\x01\x00\x10\x00{}"u8.ToArray()), 0, "bad magic");
        var path = PathOf("v.npy");
        RoundTripTests.WriteNpy(path, "<f4", "(1, 2)", new byte[8]);
        var bytes = File.ReadAllBytes(path);
        bytes[6] = 4;
        AssertAt(Rejected("v.npy", bytes), 6, "unsupported .npy version 4.0");
    }

    [Theory]
    [InlineData("<f8", "unsupported dtype '<f8'")]
    [InlineData(">f4", "big-endian")]
    [InlineData("<c8", "unsupported dtype")]
    public void Npy_wrong_dtype(string descr, string fragment)
    {
        string path = PathOf("w.npy");
        RoundTripTests.WriteNpy(path, descr, "(2, 2)", new byte[32]);
        var ex = RejectedPath(path);
        AssertAt(ex, 21, fragment); // 10-byte preamble + "{'descr': '"
    }

    [Fact]
    public void Npy_shape_problems()
    {
        string path = PathOf("s.npy");
        RoundTripTests.WriteNpy(path, "<f4", "(6,)", new byte[24]);
        Assert.Contains("1-D array of shape (6,)", RejectedPath(path).Message);

        RoundTripTests.WriteNpy(path, "<f4", "(2, 3, 4)", new byte[96]);
        Assert.Contains("3 dimensions", RejectedPath(path).Message);

        RoundTripTests.WriteNpy(path, "<f4", "(10, 4)", new byte[64]);
        Assert.Contains("only 64 bytes follow", RejectedPath(path).Message);

        RoundTripTests.WriteNpy(path, "<f4", "(3, 0)", []);
        Assert.Contains("dim 0", RejectedPath(path).Message);

        RoundTripTests.WriteNpy(path, "<f4", "(2, 2)", new byte[16], fortran: "True");
        Assert.Contains("fortran_order is True", RejectedPath(path).Message);
    }

    [Fact]
    public void Npy_header_missing_keys_or_running_past_the_end()
    {
        string path = PathOf("h.npy");
        RoundTripTests.WriteNpy(path, "<f4", "(1, 1)", new byte[4]);
        var bytes = File.ReadAllBytes(path);
        var renamed = (byte[])bytes.Clone();
        renamed[bytes.AsSpan().IndexOf("'shape'"u8) + 5] = (byte)'f';
        Assert.Contains("no 'shape'", Rejected("h.npy", renamed).Message);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), 60_000);
        AssertAt(Rejected("h.npy", bytes), 8, "runs past the end");
    }

    [Fact]
    public void Non_finite_values_are_reported_with_row_and_offset()
    {
        AssertAt(Rejected("n.fvecs", Vecs(Row(4), Row(4), [1, float.NaN, 2, 3])), 48, "row 2 column 1 is NaN");

        var fbin = Bin(3, 2, 6);
        BinaryPrimitives.WriteSingleLittleEndian(fbin.AsSpan(8 + 5 * 4), float.PositiveInfinity);
        AssertAt(Rejected("n.fbin", fbin), 28, "row 2 column 1 is +Inf");

        string path = PathOf("n.npy");
        var halves = new byte[8];
        BinaryPrimitives.WriteHalfLittleEndian(halves.AsSpan(6), Half.NaN);
        RoundTripTests.WriteNpy(path, "<f2", "(2, 2)", halves);
        AssertAt(RejectedPath(path), new FileInfo(path).Length - 2, "row 1 column 1 is NaN");
    }

    [Fact]
    public void Int64_values_outside_int32_are_rejected()
    {
        string path = PathOf("l.npy");
        var data = new byte[24];
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(16), 1L << 40);
        RoundTripTests.WriteNpy(path, "<i8", "(3,)", data);
        AssertAt(RejectedPath(path, ints: true), new FileInfo(path).Length - 8, "row 2 column 0 holds 1099511627776");
    }

    [Fact]
    public void Vectors_and_ints_are_not_interchangeable()
    {
        VectorFile.WriteInts(PathOf("g.ivecs"), new IntMatrix(1, 2, [1, 2]));
        Assert.Contains("not vectors", RejectedPath(PathOf("g.ivecs")).Message);
        VectorFile.WriteVectors(PathOf("v.fbin"), [1f, 2f], 2);
        Assert.Contains("not integers", RejectedPath(PathOf("v.fbin"), ints: true).Message);
    }

    [Fact]
    public void Unsupported_extension_lists_the_supported_ones()
    {
        var ex = Rejected("data.txt", [1, 2, 3]);
        Assert.Contains("unsupported extension '.txt'", ex.Message);
        Assert.Contains(".fvecs", ex.Message);
        Assert.Contains(".hdf5", ex.Message);
        Assert.Equal(-1, ex.Offset);
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("x.csv"), [1f], 1));
    }

    [Fact]
    public void Hdf5_missing_dataset_wrong_type_rank_and_non_finite()
    {
        string path = PathOf("a.hdf5");
        var file = new H5File
        {
            ["flat"] = new float[] { 1, 2, 3 },
            ["neighbors"] = new int[,] { { 1, 2 }, { 3, 4 } },
            ["nan"] = new float[,] { { 1, float.NaN } },
        };
        file.Write(path);

        var missing = RejectedPath(path + "#train");
        Assert.Contains("no dataset 'train'", missing.Message);
        Assert.Contains("neighbors", missing.Message);
        Assert.Contains("rank 1", RejectedPath(path + "#flat").Message);
        Assert.Contains("holds int32 values", RejectedPath(path + "#neighbors").Message);
        Assert.Contains("row 0 column 1 is NaN", RejectedPath(path + "#nan").Message);
        Assert.Contains("expected int32 or int64", RejectedPath(path + "#nan", ints: true).Message);
    }

    [Fact]
    public void Garbage_named_hdf5_is_rejected()
    {
        var ex = Rejected("junk.h5", Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray());
        Assert.Contains("HDF5", ex.Message);
    }

    [Fact]
    public void Negative_limit_is_an_argument_error()
    {
        VectorFile.WriteVectors(PathOf("v.fvecs"), [1f, 2f], 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => VectorFile.ReadVectors(PathOf("v.fvecs"), -1));
    }
}
