using System.Buffers.Binary;
using Adanns.Engine.IO;

namespace Adanns.Engine.Tests.IO;

public sealed class RoundTripTests : TempDirectoryTest
{
    public static TheoryData<string, DatasetElementType?, DatasetElementType> VectorFormats => new()
    {
        { "v.fvecs", null, DatasetElementType.Float32 },
        { "v.bvecs", null, DatasetElementType.UInt8 },
        { "v.fbin", null, DatasetElementType.Float32 },
        { "v.u8bin", null, DatasetElementType.UInt8 },
        { "v.npy", null, DatasetElementType.Float32 },
        { "v.npy", DatasetElementType.Float16, DatasetElementType.Float16 },
        { "v.npy", DatasetElementType.UInt8, DatasetElementType.UInt8 },
        { "v.hdf5", null, DatasetElementType.Float32 },
        { "v.h5#test", null, DatasetElementType.Float32 },
    };

    [Theory]
    [MemberData(nameof(VectorFormats))]
    public void Vectors_round_trip_with_limit_and_info(string name, DatasetElementType? requested, DatasetElementType stored)
    {
        const int rows = 57, dim = 13;
        var data = RandomFloats(rows * 31 + dim, rows * dim, integral: stored == DatasetElementType.UInt8);
        string path = PathOf(name);

        VectorFile.WriteVectors(path, data, dim, requested);

        Assert.Equal(new DatasetInfo(rows, dim, stored), VectorFile.GetInfo(path));
        // Half keeps 11 significant bits and |x| ≤ 2, so 2e-3 bounds its rounding error; other types are exact.
        float tolerance = stored == DatasetElementType.Float16 ? 2e-3f : 0f;
        using (var all = VectorFile.ReadVectors(path))
        {
            Assert.Equal(rows, all.Count);
            Assert.Equal(dim, all.Dimension);
            AssertClose(data, all.ToArray(), tolerance);
        }
        using (var firstTen = VectorFile.ReadVectors(path, limit: 10))
        {
            Assert.Equal(10, firstTen.Count);
            AssertClose(data.AsSpan(0, 10 * dim).ToArray(), firstTen.ToArray(), tolerance);
        }
        using var none = VectorFile.ReadVectors(path, limit: 0);
        Assert.Equal(0, none.Count);
        using var beyond = VectorFile.ReadVectors(path, limit: 10_000);
        Assert.Equal(rows, beyond.Count);
    }

    [Fact]
    public void VectorSet_overload_writes_the_same_bytes_as_the_span_overload()
    {
        var data = RandomFloats(3, 40 * 8);
        using var set = VectorSet.FromRows(data, 8);
        VectorFile.WriteVectors(PathOf("a.fvecs"), data, 8);
        VectorFile.WriteVectors(PathOf("b.fvecs"), set);
        Assert.Equal(File.ReadAllBytes(PathOf("a.fvecs")), File.ReadAllBytes(PathOf("b.fvecs")));
        Assert.Equal(4 * (1 + 8) * 40, new FileInfo(PathOf("a.fvecs")).Length);
    }

    [Theory]
    [InlineData("g.ivecs")]
    [InlineData("g.ibin")]
    [InlineData("g.npy")]
    [InlineData("g.hdf5")]
    [InlineData("g.hdf5#labels")]
    public void Ints_round_trip_with_limit_and_info(string name)
    {
        const int rows = 41, cols = 10;
        var m = new IntMatrix(rows, cols, RandomInts(rows + cols, rows * cols));
        string path = PathOf(name);

        VectorFile.WriteInts(path, m);

        // An HDF5 path without a selector reports "train" by default, which this file lacks.
        string infoPath = name == "g.hdf5" ? path + "#neighbors" : path;
        Assert.Equal(new DatasetInfo(rows, cols, DatasetElementType.Int32), VectorFile.GetInfo(infoPath));
        var back = VectorFile.ReadInts(path);
        Assert.Equal(rows, back.Rows);
        Assert.Equal(cols, back.Cols);
        Assert.Equal(m.Data, back.Data);
        Assert.Equal(m.Row(40).ToArray(), back.Row(40).ToArray());
        var limited = VectorFile.ReadInts(path, limit: 7);
        Assert.Equal(7, limited.Rows);
        Assert.Equal(m.Data.AsSpan(0, 7 * cols).ToArray(), limited.Data);
    }

    [Fact]
    public void Int64_npy_and_1d_labels_are_read_as_int32()
    {
        string path = PathOf("labels.npy");
        long[] labels = [0, 5, -3, int.MaxValue, int.MinValue];
        WriteNpy(path, "<i8", "(5,)", labels.SelectMany(BitConverter.GetBytes).ToArray());

        Assert.Equal(new DatasetInfo(5, 1, DatasetElementType.Int64), VectorFile.GetInfo(path));
        var m = VectorFile.ReadInts(path);
        Assert.Equal(1, m.Cols);
        Assert.Equal(labels.Select(v => (int)v).ToArray(), m.Data);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Npy_versions_2_and_3_are_read(int major)
    {
        string path = PathOf("v.npy");
        float[] values = [1, 2, 3, 4, 5, 6];
        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        int pad = (64 - (12 + dict.Length + 1) % 64) % 64;
        string header = dict + new string(' ', pad) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(header));
        bytes.AddRange(values.SelectMany(BitConverter.GetBytes));
        File.WriteAllBytes(path, bytes.ToArray());

        using var set = VectorFile.ReadVectors(path);
        Assert.Equal(3, set.Dimension);
        Assert.Equal(values, set.ToArray());
    }

    [Fact]
    public void Ann_benchmarks_file_round_trips_every_dataset_and_the_metric()
    {
        string path = PathOf("glove-13-angular.hdf5");
        using var train = VectorSet.FromRows(RandomFloats(1, 300 * 13), 13);
        using var test = VectorSet.FromRows(RandomFloats(2, 20 * 13), 13);
        var neighbors = new IntMatrix(20, 5, RandomInts(3, 100));
        var distances = RandomFloats(4, 100);

        AnnBenchmarksHdf5.Write(path, train, test, neighbors, distances, "angular");

        Assert.Equal("angular", AnnBenchmarksHdf5.ReadDistance(path));
        Assert.Equal(Metric.Cosine, AnnBenchmarksHdf5.ReadMetric(path));
        using (var t = VectorFile.ReadVectors(path))
            Assert.Equal(train.ToArray(), t.ToArray());
        using (var q = VectorFile.ReadVectors(path + "#test"))
            Assert.Equal(test.ToArray(), q.ToArray());
        using (var q = VectorFile.ReadVectors(path + ":test", limit: 3))
            Assert.Equal(test.ToArray().AsSpan(0, 39).ToArray(), q.ToArray());
        Assert.Equal(neighbors.Data, VectorFile.ReadInts(path).Data);
        using (var d = VectorFile.ReadVectors(path + "#distances"))
            Assert.Equal(distances, d.ToArray());
        Assert.Equal(new DatasetInfo(300, 13, DatasetElementType.Float32), VectorFile.GetInfo(path));
        Assert.Equal(new DatasetInfo(20, 5, DatasetElementType.Int32), VectorFile.GetInfo(path + "#neighbors"));
    }

    [Fact]
    public void Writing_replaces_an_existing_file_and_leaves_no_temporary_files()
    {
        string path = PathOf("v.fbin");
        VectorFile.WriteVectors(path, RandomFloats(1, 50), 5);
        VectorFile.WriteVectors(path, RandomFloats(2, 20), 5);
        Assert.Equal(4, VectorFile.GetInfo(path).Rows);
        Assert.Equal([path], Directory.GetFiles(Dir));
    }

    private static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    internal static void WriteNpy(string path, string descr, string shape, byte[] data, string fortran = "False")
    {
        string dict = $"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}";
        int pad = (64 - (10 + dict.Length + 1) % 64) % 64;
        string header = dict + new string(' ', pad) + "\n";
        var bytes = new byte[10 + header.Length + data.Length];
        bytes[0] = 0x93;
        "NUMPY"u8.CopyTo(bytes.AsSpan(1));
        bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)header.Length);
        System.Text.Encoding.ASCII.GetBytes(header, bytes.AsSpan(10));
        data.CopyTo(bytes.AsSpan(10 + header.Length));
        File.WriteAllBytes(path, bytes);
    }
}
