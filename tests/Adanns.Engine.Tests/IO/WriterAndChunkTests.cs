using Adanns.Engine.IO;
using PureHDF;

namespace Adanns.Engine.Tests.IO;

public sealed class WriterAndChunkTests : TempDirectoryTest
{
    [Fact]
    public void Bvecs_rejects_values_that_are_not_bytes_and_leaves_no_file()
    {
        string path = PathOf("b.bvecs");
        var ex = Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(path, [1f, 2f, 2.5f, 4f], 2));
        Assert.Contains("Row 1 column 0 value 2.5", ex.Message);
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("b.u8bin"), [256f, 0f], 2));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("b.npy"), [-1f, 0f], 2, DatasetElementType.UInt8));
        Assert.Empty(Directory.GetFiles(Dir));
    }

    [Fact]
    public void Failed_write_keeps_the_previous_file_intact()
    {
        string path = PathOf("v.fvecs");
        VectorFile.WriteVectors(path, [1f, 2f], 2);
        var before = File.ReadAllBytes(path);

        var ex = Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(path, [3f, 4f, 5f, float.NaN], 2));
        Assert.Contains("Row 1 column 1 is NaN", ex.Message);

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(Dir));
    }

    [Fact]
    public void Float16_overflow_and_type_mismatches_are_argument_errors()
    {
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("h.npy"), [70000f], 1, DatasetElementType.Float16));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("h.fvecs"), [1f], 1, DatasetElementType.Float16));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("h.ivecs"), [1f], 1));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteInts(PathOf("h.fbin"), new IntMatrix(1, 1, [1])));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("h.fbin"), [1f, 2f, 3f], 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => VectorFile.WriteVectors(PathOf("h.fbin"), [1f], 0));
        Assert.Empty(Directory.GetFiles(Dir));
    }

    [Theory]
    [InlineData("w.fvecs")]
    [InlineData("w.fbin")]
    [InlineData("w.npy")]
    [InlineData("w.hdf5")]
    public void Wide_rows_span_several_decode_chunks(string name)
    {
        // 50k dims: 20 rows per 2^20-float chunk, so 45 rows take three chunks, the last one partial.
        const int rows = 45, dim = 50_000;
        var data = RandomFloats(9, rows * dim);
        string path = PathOf(name);
        VectorFile.WriteVectors(path, data, dim);
        using (var set = VectorFile.ReadVectors(path))
            Assert.Equal(data, set.ToArray());
        using (var limited = VectorFile.ReadVectors(path, limit: 21))
            Assert.Equal(data.AsSpan(0, 21 * dim).ToArray(), limited.ToArray());
    }

    [Theory]
    [InlineData("s.fvecs", false)]
    [InlineData("s.bvecs", true)]
    [InlineData("s.fbin", false)]
    [InlineData("s.npy", false)]
    [InlineData("s.hdf5", false)]
    [InlineData("s-ubyte", true)]
    [InlineData("s-ubyte.gz", true)]
    public void Chunked_read_streams_the_same_rows_in_bounded_chunks(string name, bool bytes)
    {
        // 50k dims: 20 rows per 2^20-float chunk, so 45 rows take three chunks (20, 20, 5).
        const int rows = 45, dim = 50_000;
        var data = RandomFloats(11, rows * dim, integral: bytes);
        string path = PathOf(name);
        VectorFile.WriteVectors(path, data, dim);

        var seen = new List<float>();
        var shapes = new List<(long First, int Count)>();
        foreach (var chunk in VectorFile.ReadVectorChunks(path))
        {
            Assert.Equal(dim, chunk.Dimension);
            Assert.Equal(chunk.Count * dim, chunk.Rows.Length);
            Assert.Equal(data.AsSpan((int)(chunk.FirstRow + chunk.Count - 1) * dim, dim).ToArray(), chunk.Row(chunk.Count - 1).ToArray());
            shapes.Add((chunk.FirstRow, chunk.Count));
            seen.AddRange(chunk.Rows.ToArray());
        }
        Assert.Equal([(0L, 20), (20L, 20), (40L, 5)], shapes);
        Assert.Equal(data, seen.ToArray());

        var limited = VectorFile.ReadVectorChunks(path, limit: 21).Select(c => (c.FirstRow, c.Count)).ToList();
        Assert.Equal([(0L, 20), (20L, 1)], limited);
    }

    [Fact]
    public void Chunked_read_delivers_the_chunks_before_a_bad_row_then_names_it()
    {
        const int rows = 45, dim = 50_000;
        var data = RandomFloats(12, rows * dim);
        string path = PathOf("bad.fvecs");
        VectorFile.WriteVectors(path, data, dim);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.Position = (41L * (dim + 1) + 1 + 3) * 4; // row 41, column 3 (each row has a 4-byte dim header)
            stream.Write(BitConverter.GetBytes(float.NaN));
        }
        int delivered = 0;
        var ex = Assert.Throws<DatasetFormatException>(() =>
        {
            foreach (var chunk in VectorFile.ReadVectorChunks(path)) delivered += chunk.Count;
        });
        Assert.Equal(40, delivered);
        Assert.Contains("row 41 column 3 is NaN", ex.Message);
        Assert.Throws<DatasetFormatException>(() => VectorFile.ReadVectorChunks(PathOf("x.txt")));
    }

    [Fact]
    public void Non_finite_value_in_a_later_chunk_reports_its_absolute_row()
    {
        const int rows = 45, dim = 50_000;
        var data = RandomFloats(10, rows * dim);
        string path = PathOf("late.fbin");
        VectorFile.WriteVectors(path, data, dim);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.Position = 8 + (43L * dim + 7) * 4;
            stream.Write(BitConverter.GetBytes(float.NegativeInfinity));
        }
        var ex = Assert.Throws<DatasetFormatException>(() => VectorFile.ReadVectors(path).Dispose());
        Assert.Equal(8 + (43L * dim + 7) * 4, ex.Offset);
        Assert.Contains("row 43 column 7 is -Inf", ex.Message);
        using var head = VectorFile.ReadVectors(path, limit: 40);
        Assert.Equal(40, head.Count);
    }

    [Fact]
    public void Hdf5_int64_neighbors_are_narrowed_with_a_range_check()
    {
        string path = PathOf("n.hdf5");
        var file = new H5File
        {
            ["neighbors"] = new long[,] { { 1, 2 }, { 3, 4 } },
            ["huge"] = new long[,] { { 1, 1L << 33 } },
        };
        file.Write(path);
        Assert.Equal(new DatasetInfo(2, 2, DatasetElementType.Int64), VectorFile.GetInfo(path + "#neighbors"));
        Assert.Equal([1, 2, 3, 4], VectorFile.ReadInts(path).Data);
        var ex = Assert.Throws<DatasetFormatException>(() => VectorFile.ReadInts(path + "#huge"));
        Assert.Contains("row 0 column 1 holds 8589934592", ex.Message);
    }

    [Fact]
    public void Hdf5_selector_only_splits_after_an_hdf5_extension()
    {
        Assert.Equal(("d/x.hdf5", "test"), VectorFile.SplitSelector("d/x.hdf5#test"));
        Assert.Equal(("C:/x.h5", "train"), VectorFile.SplitSelector("C:/x.h5:train"));
        Assert.Equal(("C:/a#b.fvecs", null), VectorFile.SplitSelector("C:/a#b.fvecs"));
        Assert.Equal(("x.hdf5", null), VectorFile.SplitSelector("x.hdf5"));
    }
}
