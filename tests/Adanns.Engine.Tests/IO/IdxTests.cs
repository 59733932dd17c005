using System.Buffers.Binary;
using System.IO.Compression;
using Adanns.Engine.IO;

namespace Adanns.Engine.Tests.IO;

public sealed class IdxTests : TempDirectoryTest
{
    /// <summary>Two 2×2 uint8 images written out by hand from the IDX spec, independent of the writer.</summary>
    private static readonly byte[] TwoImages =
    [
        0x00, 0x00, 0x08, 0x03, // magic: two zero bytes, type uint8, 3 dimensions
        0x00, 0x00, 0x00, 0x02, // 2 images
        0x00, 0x00, 0x00, 0x02, // 2 rows
        0x00, 0x00, 0x00, 0x02, // 2 columns
        0, 1, 2, 255, // image 0, row-major
        10, 20, 128, 40, // image 1
    ];

    private static readonly float[] TwoImagesValues = [0, 1, 2, 255, 10, 20, 128, 40];

    /// <summary>An IDX header for <paramref name="sizes"/> followed by <paramref name="data"/> as given.</summary>
    private static byte[] Idx(byte type, uint[] sizes, byte[] data)
    {
        var bytes = new byte[4 + 4 * sizes.Length + data.Length];
        bytes[2] = type;
        bytes[3] = (byte)sizes.Length;
        for (int i = 0; i < sizes.Length; i++)
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + 4 * i), sizes[i]);
        data.CopyTo(bytes.AsSpan(4 + 4 * sizes.Length));
        return bytes;
    }

    private static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
            gz.Write(bytes);
        return output.ToArray();
    }

    private string Put(string name, byte[] content)
    {
        string path = PathOf(name);
        File.WriteAllBytes(path, name.EndsWith(".gz", StringComparison.Ordinal) ? Gzip(content) : content);
        return path;
    }

    private DatasetFormatException Rejected(string name, byte[] content, bool ints = false)
    {
        string path = Put(name, content);
        var ex = ints
            ? Assert.Throws<DatasetFormatException>(() => VectorFile.ReadInts(path))
            : Assert.Throws<DatasetFormatException>(() => VectorFile.ReadVectors(path).Dispose());
        Assert.Contains(name, ex.Message);
        return ex;
    }

    private static void AssertAt(DatasetFormatException ex, long offset, string fragment)
    {
        Assert.Equal(offset, ex.Offset);
        Assert.Contains($"at byte {offset}:", ex.Message);
        Assert.Contains(fragment, ex.Message);
    }

    [Theory]
    [InlineData("hand-images-idx3-ubyte")]
    [InlineData("hand-images-idx3-ubyte.gz")]
    public void Hand_written_images_are_read_as_flattened_vectors(string name)
    {
        string path = Put(name, TwoImages);
        Assert.Equal(new DatasetInfo(2, 4, DatasetElementType.UInt8), VectorFile.GetInfo(path));
        using var set = VectorFile.ReadVectors(path);
        Assert.Equal(2, set.Count);
        Assert.Equal(4, set.Dimension);
        Assert.Equal(TwoImagesValues, set.ToArray());
        using var first = VectorFile.ReadVectors(path, limit: 1);
        Assert.Equal(TwoImagesValues[..4], first.ToArray());
    }

    [Fact]
    public void Writer_produces_exactly_the_hand_written_bytes()
    {
        string path = PathOf("w-images-idx3-ubyte");
        VectorFile.WriteIdx(path, TwoImagesValues, 2, 2);
        Assert.Equal(TwoImages, File.ReadAllBytes(path));

        string gz = PathOf("w-images-idx3-ubyte.gz");
        VectorFile.WriteIdx(gz, TwoImagesValues, 2, 2);
        using var input = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress);
        using var plain = new MemoryStream();
        input.CopyTo(plain);
        Assert.Equal(TwoImages, plain.ToArray());

        VectorFile.WriteIdx(PathOf("w-labels-idx1-ubyte"), new IntMatrix(3, 1, [7, 0, 255]));
        Assert.Equal(Idx(0x08, [3], [7, 0, 255]), File.ReadAllBytes(PathOf("w-labels-idx1-ubyte")));
    }

    [Theory]
    [InlineData("labels-idx1-ubyte")]
    [InlineData("labels-idx1-ubyte.gz")]
    public void Hand_written_labels_and_big_endian_int32_and_float32(string name)
    {
        string path = Put(name, Idx(0x08, [3], [7, 0, 9]));
        Assert.Equal(new DatasetInfo(3, 1, DatasetElementType.UInt8), VectorFile.GetInfo(path));
        var labels = VectorFile.ReadInts(path);
        Assert.Equal((3, 1), (labels.Rows, labels.Cols));
        Assert.Equal([7, 0, 9], labels.Data);

        // int32 -2, 70000 and float32 1.5, -2, 0.25, 3e9, 0, -1 (2 × 3), all big-endian.
        string ints = Put("i32.idx", Idx(0x0C, [2], [0xFF, 0xFF, 0xFF, 0xFE, 0x00, 0x01, 0x11, 0x70]));
        Assert.Equal([-2, 70000], VectorFile.ReadInts(ints).Data);
        float[] floats = [1.5f, -2f, 0.25f, 3e9f, 0f, -1f];
        var data = new byte[24];
        for (int i = 0; i < floats.Length; i++) BinaryPrimitives.WriteSingleBigEndian(data.AsSpan(4 * i), floats[i]);
        string f32 = Put("f32.idx.gz", Idx(0x0D, [2, 3], data));
        Assert.Equal(new DatasetInfo(2, 3, DatasetElementType.Float32), VectorFile.GetInfo(f32));
        using var set = VectorFile.ReadVectors(f32);
        Assert.Equal(floats, set.ToArray());
    }

    [Theory]
    [InlineData("train-images-idx3-ubyte")]
    [InlineData("train-images-idx3-ubyte.gz")]
    [InlineData("train-images.idx3-ubyte")]
    [InlineData("Images.IDX.GZ")]
    public void Images_round_trip_with_limit_and_info(string name)
    {
        const int n = 57, rows = 3, cols = 5;
        var data = RandomFloats(n + rows, n * rows * cols, integral: true);
        string path = PathOf(name);
        using (var set = VectorSet.FromRows(data, rows * cols))
            VectorFile.WriteIdx(path, set, rows, cols);

        Assert.Equal(new DatasetInfo(n, rows * cols, DatasetElementType.UInt8), VectorFile.GetInfo(path));
        using (var all = VectorFile.ReadVectors(path))
            Assert.Equal(data, all.ToArray());
        using (var firstTen = VectorFile.ReadVectors(path, limit: 10))
            Assert.Equal(data.AsSpan(0, 10 * rows * cols).ToArray(), firstTen.ToArray());
        using (var none = VectorFile.ReadVectors(path, limit: 0))
            Assert.Equal(0, none.Count);
        using var beyond = VectorFile.ReadVectors(path, limit: 10_000);
        Assert.Equal(n, beyond.Count);
        Assert.Equal([path], Directory.GetFiles(Dir));
    }

    [Theory]
    [InlineData("t10k-labels-idx1-ubyte", DatasetElementType.UInt8)]
    [InlineData("t10k-labels-idx1-ubyte.gz", DatasetElementType.UInt8)]
    [InlineData("labels.idx", DatasetElementType.Int32)]
    [InlineData("labels.idx1.gz", DatasetElementType.Int32)]
    public void Labels_round_trip_with_limit_and_info(string name, DatasetElementType type)
    {
        var values = RandomInts(11, 41).Select(v => type == DatasetElementType.UInt8 ? Math.Abs(v) % 256 : v).ToArray();
        string path = PathOf(name);
        VectorFile.WriteIdx(path, new IntMatrix(41, 1, values), type);

        Assert.Equal(new DatasetInfo(41, 1, type), VectorFile.GetInfo(path));
        var back = VectorFile.ReadInts(path);
        Assert.Equal((41, 1), (back.Rows, back.Cols));
        Assert.Equal(values, back.Data);
        Assert.Equal(values[..7], VectorFile.ReadInts(path, limit: 7).Data);
    }

    [Theory]
    [InlineData("v.idx")]
    [InlineData("v.idx.gz")]
    public void WriteVectors_and_WriteInts_accept_idx_names(string name)
    {
        string path = PathOf(name);
        float[] floats = [0.5f, -1f, 2f, 3f, 4f, 1e-3f];
        VectorFile.WriteVectors(path, floats, 3, DatasetElementType.Float32);
        Assert.Equal(new DatasetInfo(2, 3, DatasetElementType.Float32), VectorFile.GetInfo(path));
        using (var set = VectorFile.ReadVectors(path))
            Assert.Equal(floats, set.ToArray());

        VectorFile.WriteVectors(path, [1f, 2f, 3f, 4f], 2);
        Assert.Equal(new DatasetInfo(2, 2, DatasetElementType.UInt8), VectorFile.GetInfo(path));

        var m = new IntMatrix(3, 4, RandomInts(5, 12));
        VectorFile.WriteInts(path, m);
        Assert.Equal(new DatasetInfo(3, 4, DatasetElementType.Int32), VectorFile.GetInfo(path));
        Assert.Equal(m.Data, VectorFile.ReadInts(path).Data);
    }

    [Fact]
    public void Gzip_reads_span_several_chunks_and_grow_as_they_go()
    {
        // 28×28 images: 1337 rows per 2^20-float chunk, so 3000 images take three chunks, the last partial.
        const int n = 3000, side = 28;
        var data = RandomFloats(21, n * side * side, integral: true);
        string path = PathOf("big-images-idx3-ubyte.gz");
        VectorFile.WriteIdx(path, data, side, side);
        using (var set = VectorFile.ReadVectors(path))
            Assert.Equal(data, set.ToArray());
        using (var limited = VectorFile.ReadVectors(path, limit: 1400))
            Assert.Equal(data.AsSpan(0, 1400 * side * side).ToArray(), limited.ToArray());

        // 3000 × 400 int32 is 1.2M values, past one chunk, so the label array grows once.
        var m = new IntMatrix(3000, 400, RandomInts(22, 3000 * 400));
        VectorFile.WriteIdx(PathOf("wide.idx.gz"), m, DatasetElementType.Int32);
        Assert.Equal(m.Data, VectorFile.ReadInts(PathOf("wide.idx.gz")).Data);
    }

    [Fact]
    public void Names_that_select_idx()
    {
        Put("a-idx1-ubyte", Idx(0x08, [1], [3]));
        Put("b.idx3", Idx(0x08, [1, 1, 1], [3]));
        Put("emnist-idx2.bin.gz", Idx(0x08, [1, 2], [3, 4]));
        Assert.Equal(1, VectorFile.GetInfo(PathOf("a-idx1-ubyte")).Dimension);
        Assert.Equal(1, VectorFile.GetInfo(PathOf("b.idx3")).Dimension);
        Assert.Equal(2, VectorFile.GetInfo(PathOf("emnist-idx2.bin.gz")).Dimension);
        var ex = Assert.Throws<DatasetFormatException>(() => VectorFile.GetInfo(PathOf("x.fvecs.gz")));
        Assert.Contains("unsupported extension '.gz'", ex.Message);
        Assert.Contains("-ubyte.gz", ex.Message);
    }

    [Theory]
    [InlineData("m-idx3-ubyte")]
    [InlineData("m-idx3-ubyte.gz")]
    public void Bad_magic(string name)
    {
        var bytes = (byte[])TwoImages.Clone();
        bytes[0] = 0x12;
        AssertAt(Rejected(name, bytes), 0, "bad magic 0x12 0x00");
        bytes[0] = 0;
        bytes[1] = 0x01;
        AssertAt(Rejected(name, bytes), 1, "two zero bytes");
    }

    [Fact]
    public void Gzip_data_under_a_plain_name_gets_a_hint()
    {
        var ex = Rejected("z-idx3-ubyte", Gzip(TwoImages));
        AssertAt(ex, 0, "looks gzip-compressed");
    }

    [Theory]
    [InlineData(0x09, "unsupported IDX type 0x09 (int8)")]
    [InlineData(0x0E, "0x0E (float64)")]
    [InlineData(0x42, "unsupported IDX type 0x42; supported: 0x08 uint8, 0x0C int32, 0x0D float32")]
    public void Unknown_type_byte(byte type, string fragment)
    {
        var bytes = (byte[])TwoImages.Clone();
        bytes[2] = type;
        AssertAt(Rejected("t.idx", bytes), 2, fragment);
    }

    [Fact]
    public void Zero_or_too_many_dimensions()
    {
        AssertAt(Rejected("d0.idx", [0, 0, 8, 0, 1, 2, 3, 4]), 3, "declares 0 dimensions");
        AssertAt(Rejected("d5.idx", Idx(0x08, [1, 1, 1, 1, 1], [7])), 3, "5 dimensions, more than the 4");
    }

    [Theory]
    [InlineData("z.idx")]
    [InlineData("z.idx.gz")]
    public void A_size_of_zero(string name)
    {
        AssertAt(Rejected(name, Idx(0x08, [2, 0, 2], [])), 8, "dimension 1 has size 0");
        AssertAt(Rejected(name, Idx(0x08, [0], []), ints: true), 4, "dimension 0 has size 0");
    }

    [Fact]
    public void Oversized_header_values()
    {
        AssertAt(Rejected("r.idx", Idx(0x08, [uint.MaxValue, 2], [])), 4, "4294967295 rows");
        AssertAt(Rejected("w.idx.gz", Idx(0x08, [1, 2048, 2048], [])), 12, "exceed the supported maximum dim");
    }

    [Theory]
    [InlineData("e.idx", "file is empty")]
    [InlineData("e.idx.gz", "decompressed data is empty")]
    public void Empty_and_short_headers(string name, string fragment)
    {
        AssertAt(Rejected(name, []), 0, fragment);
        AssertAt(Rejected(name, [0, 0]), 0, "too short for the 4-byte IDX magic");
        AssertAt(Rejected(name, TwoImages[..10]), 10, "3 dimensions need 12 bytes of sizes but the");
    }

    [Fact]
    public void Truncated_plain_file_is_rejected_before_reading_even_with_a_limit()
    {
        string path = Put("t-idx3-ubyte", TwoImages[..^3]);
        var ex = Assert.Throws<DatasetFormatException>(() => VectorFile.GetInfo(path));
        AssertAt(ex, 21, "truncated: the file ends inside row 1; the header declares 2 × 2 × 2 uint8 (8 bytes of values) but only 5 bytes follow");
        Assert.Throws<DatasetFormatException>(() => VectorFile.ReadVectors(path, limit: 1).Dispose());
    }

    [Fact]
    public void Truncated_gzip_is_reported_where_the_data_runs_out()
    {
        var ex = Rejected("t-idx3-ubyte.gz", TwoImages[..^3]);
        AssertAt(ex, 21, "truncated: the decompressed data ends inside row 1");
        Assert.Contains("offset in the decompressed data", ex.Message);
        // The first image is whole, so a limit of 1 reads it without reaching the cut.
        using var head = VectorFile.ReadVectors(PathOf("t-idx3-ubyte.gz"), limit: 1);
        Assert.Equal(TwoImagesValues[..4], head.ToArray());

        AssertAt(Rejected("tl-idx1-ubyte.gz", Idx(0x0C, [3], new byte[10]), ints: true), 18, "ends inside row 2");
    }

    [Theory]
    [InlineData("x-idx3-ubyte")]
    [InlineData("x-idx3-ubyte.gz")]
    public void Trailing_data(string name)
    {
        AssertAt(Rejected(name, [.. TwoImages, 1, 2, 3]), 24, "3 unexpected bytes after the 2 × 2 × 2 uint8 values");
        AssertAt(Rejected("l" + name, [.. Idx(0x08, [2], [1, 2]), 9], ints: true), 10, "1 unexpected bytes");
    }

    [Fact]
    public void Corrupt_gzip_stream()
    {
        var gz = Gzip(TwoImages);
        string path = PathOf("c-idx3-ubyte.gz");
        File.WriteAllBytes(path, Enumerable.Range(0, 64).Select(i => (byte)(i * 37)).ToArray());
        var ex = Assert.Throws<DatasetFormatException>(() => VectorFile.ReadVectors(path).Dispose());
        Assert.Contains("corrupt gzip data", ex.Message);
        Assert.IsType<InvalidDataException>(ex.InnerException);

        gz[^8] ^= 0xFF; // CRC32 of the trailer
        File.WriteAllBytes(path, gz);
        Assert.Contains("corrupt gzip data", Assert.Throws<DatasetFormatException>(() => VectorFile.ReadVectors(path).Dispose()).Message);
    }

    [Fact]
    public void Wrong_rank_or_type_for_the_call()
    {
        var labels = Rejected("l-idx1-ubyte", Idx(0x08, [3], [1, 2, 3]));
        AssertAt(labels, 3, "1-D IDX array of 3 uint8 values");
        Assert.Contains("ReadInts", labels.Message);

        var images = Rejected("i-idx3-ubyte", TwoImages, ints: true);
        AssertAt(images, 3, "3-D IDX array (2 × 2 × 2 uint8) looks like images");
        Assert.Contains("ReadVectors", images.Message);

        AssertAt(Rejected("f.idx", Idx(0x0D, [1, 1], new byte[4]), ints: true), 2, "holds float32 values, not integers");
        AssertAt(Rejected("i.idx", Idx(0x0C, [1, 1], new byte[4])), 2, "holds int32 values, not vectors");
    }

    [Fact]
    public void Non_finite_float32_is_reported_with_row_and_offset()
    {
        var data = new byte[16];
        BinaryPrimitives.WriteSingleBigEndian(data.AsSpan(12), float.NaN);
        AssertAt(Rejected("n.idx", Idx(0x0D, [2, 2], data)), 12 + 12, "row 1 column 1 is NaN");
    }

    [Fact]
    public void Writer_argument_errors_leave_no_file()
    {
        var ex = Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("a-idx3-ubyte"), [1f, 2f, 2.5f, 4f], 1, 2));
        Assert.Contains("Row 1 column 0 value 2.5 is not an integer in 0..255", ex.Message);
        Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("a-idx3-ubyte.gz"), [256f], 1, 1));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("a-idx3-ubyte"), [1f, 2f, 3f], 1, 2));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("a-idx3-ubyte"), [], 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => VectorFile.WriteIdx(PathOf("a-idx3-ubyte"), [1f], 0, 1));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("a.fvecs"), [1f], 1, 1));
        var label = Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("l-idx1-ubyte.gz"), new IntMatrix(2, 1, [3, 300])));
        Assert.Contains("Row 1 column 0 value 300 is outside 0..255", label.Message);
        Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("l.idx"), new IntMatrix(1, 1, [1]), DatasetElementType.Int64));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("v.idx"), [1f, float.NaN], 2, DatasetElementType.Float32));
        Assert.Throws<ArgumentException>(() => VectorFile.WriteVectors(PathOf("v.idx"), [1f], 1, DatasetElementType.Float16));
        using (var set = VectorSet.FromRows([1f, 2f, 3f], 3))
            Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(PathOf("a-idx3-ubyte"), set, 2, 2));
        Assert.Empty(Directory.GetFiles(Dir));
    }

    [Fact]
    public void Failed_gzip_write_keeps_the_previous_file_intact()
    {
        string path = PathOf("k-idx3-ubyte.gz");
        VectorFile.WriteIdx(path, TwoImagesValues, 2, 2);
        var before = File.ReadAllBytes(path);
        Assert.Throws<ArgumentException>(() => VectorFile.WriteIdx(path, [1f, 2f, 3f, -4f], 2, 2));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(Dir));
    }
}
