using PureHDF;
using PureHDF.Selections;
using PureHDF.VOL.Native;

namespace Adanns.Engine.IO;

/// <summary>
/// ann-benchmarks HDF5 files: 2-D datasets <c>train</c> and <c>test</c> (float32), <c>neighbors</c> (int32)
/// and <c>distances</c> (float32), plus the root attribute <c>distance</c> ("angular", "euclidean", "dot", ...).
/// Reads go through PureHDF in row chunks selected by hyperslab, so only a bounded buffer is held in the
/// managed heap besides the result; writes stream the same way into a temporary file that is renamed on success.
/// </summary>
public static class AnnBenchmarksHdf5
{
    /// <summary>Name of the root attribute holding the metric.</summary>
    public const string DistanceAttribute = "distance";

    /// <summary>Reads float dataset <paramref name="dataset"/> (default "train"), at most <paramref name="limit"/> rows.</summary>
    public static VectorSet ReadVectors(string path, string dataset = "train", int? limit = null)
    {
        using var file = Open(path);
        var (ds, n, dim) = OpenVectors(file, path, dataset, limit);
        var set = new VectorSet(dim, n);
        try
        {
            foreach (var chunk in Chunks(ds, path, dataset, n, dim)) set.AddRange(chunk.Rows.Span);
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>The rows of float dataset <paramref name="dataset"/> (at most <paramref name="limit"/>) in bounded chunks; see <see cref="VectorFile.ReadVectorChunks"/>.</summary>
    internal static IEnumerable<VectorChunk> ReadVectorChunks(string path, string dataset, int? limit)
    {
        using var file = Open(path);
        var (ds, n, dim) = OpenVectors(file, path, dataset, limit);
        foreach (var chunk in Chunks(ds, path, dataset, n, dim)) yield return chunk;
    }

    private static (NativeDataset Dataset, int Rows, int Dim) OpenVectors(NativeFile file, string path, string dataset, int? limit)
    {
        var (ds, rows, dim, type) = OpenMatrix(file, path, dataset);
        if (type != DatasetElementType.Float32)
            throw new DatasetFormatException(path, -1, $"dataset '{dataset}' holds {type.Name()} values; vectors must be float32");
        return (ds, FormatLimits.ResolveLimit(rows, limit), dim);
    }

    private static IEnumerable<VectorChunk> Chunks(NativeDataset ds, string path, string dataset, int n, int dim)
    {
        if (n == 0) yield break;
        int rowsPerChunk = Math.Max(1, FormatLimits.ChunkElements / dim);
        var buffer = new float[(long)Math.Min(rowsPerChunk, n) * dim];
        for (int start = 0; start < n; start += rowsPerChunk)
        {
            int count = Math.Min(rowsPerChunk, n - start);
            int first = start;
            Wrap(path, dataset, () => ds.Read(buffer.AsSpan(0, count * dim), RowSlab(first, count, dim)));
            int bad = MatrixReader.FirstNonFinite(buffer.AsSpan(0, count * dim));
            if (bad >= 0)
                throw new DatasetFormatException(path, -1,
                    $"dataset '{dataset}' row {start + bad / dim} column {bad % dim} is {MatrixReader.Describe(buffer[bad])}; vectors must be finite");
            yield return new VectorChunk(start, count, dim, buffer.AsMemory(0, count * dim));
        }
    }

    /// <summary>Reads integer dataset <paramref name="dataset"/> (default "neighbors"), at most <paramref name="limit"/> rows.</summary>
    public static IntMatrix ReadInts(string path, string dataset = "neighbors", int? limit = null)
    {
        using var file = Open(path);
        var (ds, rows, dim, type) = OpenMatrix(file, path, dataset);
        if (!type.IsInteger())
            throw new DatasetFormatException(path, -1, $"dataset '{dataset}' holds {type.Name()} values; expected int32 or int64");
        int n = FormatLimits.ResolveLimit(rows, limit);
        if ((long)n * dim > Array.MaxLength)
            throw new DatasetFormatException(path, -1, $"dataset '{dataset}' has {n} × {dim} values, more than an int matrix holds; pass a smaller limit");
        var data = new int[(long)n * dim];
        int rowsPerChunk = Math.Max(1, FormatLimits.ChunkElements / dim);
        long[]? wide = type == DatasetElementType.Int64 && n > 0 ? new long[(long)Math.Min(rowsPerChunk, n) * dim] : null;
        for (int start = 0; start < n; start += rowsPerChunk)
        {
            int count = Math.Min(rowsPerChunk, n - start);
            int offset = start * dim;
            int length = count * dim;
            if (wide == null)
            {
                Wrap(path, dataset, () => ds.Read(data.AsSpan(offset, length), RowSlab(start, count, dim)));
                continue;
            }
            Wrap(path, dataset, () => ds.Read(wide.AsSpan(0, length), RowSlab(start, count, dim)));
            for (int i = 0; i < length; i++)
            {
                long v = wide[i];
                if (v < int.MinValue || v > int.MaxValue)
                    throw new DatasetFormatException(path, -1,
                        $"dataset '{dataset}' row {start + i / dim} column {i % dim} holds {v}, outside the int32 range");
                data[offset + i] = (int)v;
            }
        }
        return new IntMatrix(n, dim, data);
    }

    /// <summary>Shape and element type of <paramref name="dataset"/>, without reading its data.</summary>
    public static DatasetInfo GetInfo(string path, string dataset)
    {
        using var file = Open(path);
        var (_, rows, dim, type) = OpenMatrix(file, path, dataset);
        return new DatasetInfo(rows, dim, type);
    }

    /// <summary>The root <c>distance</c> attribute (e.g. "angular"), or null when the file has none.</summary>
    public static string? ReadDistance(string path)
    {
        using var file = Open(path);
        if (!Wrap(path, "/", () => file.AttributeExists(DistanceAttribute)))
            return null;
        return Wrap(path, "/", () => file.Attribute(DistanceAttribute).Read<string>());
    }

    /// <summary>The metric named by the root <c>distance</c> attribute ("angular" → cosine, "euclidean" → L2, "dot"/"ip" → inner product).</summary>
    public static Metric ReadMetric(string path)
    {
        string distance = ReadDistance(path)
            ?? throw new DatasetFormatException(path, -1, $"root attribute '{DistanceAttribute}' is missing");
        try
        {
            return MetricExtensions.Parse(distance);
        }
        catch (ArgumentException ex)
        {
            throw new DatasetFormatException(path, -1, $"root attribute '{DistanceAttribute}' is '{distance}', which this library does not support", ex);
        }
    }

    /// <summary>
    /// Writes a complete ann-benchmarks file: <paramref name="train"/>, <paramref name="test"/>,
    /// <paramref name="neighbors"/> and, when given, <paramref name="distances"/> (row-major, same shape as
    /// <paramref name="neighbors"/>), plus the root attribute <c>distance</c>. Replaces <paramref name="path"/> atomically.
    /// </summary>
    public static void Write(string path, VectorSet train, VectorSet test, IntMatrix neighbors, float[]? distances, string distance)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(neighbors);
        ArgumentException.ThrowIfNullOrWhiteSpace(distance);
        if (train.Dimension != test.Dimension)
            throw new ArgumentException($"Train rows have {train.Dimension} dims but test rows have {test.Dimension}.", nameof(test));
        if (neighbors.Rows != test.Count)
            throw new ArgumentException($"Neighbors has {neighbors.Rows} rows; it needs one per test row ({test.Count}).", nameof(neighbors));
        if (distances != null && distances.Length != neighbors.Data.Length)
            throw new ArgumentException($"Distances hold {distances.Length} values; neighbors is {neighbors.Rows} × {neighbors.Cols}.", nameof(distances));
        var datasets = new List<PendingDataset>
        {
            PendingDataset.Of("train", train),
            PendingDataset.Of("test", test),
            PendingDataset.Of("neighbors", neighbors),
        };
        if (distances != null)
            datasets.Add(new PendingDataset("distances", neighbors.Rows, neighbors.Cols, distances, null, null));
        WriteFile(path, datasets, distance);
    }

    /// <summary>Writes a file holding only float dataset <paramref name="dataset"/> (rows × dim, row-major).</summary>
    internal static void WriteSingle(string path, string dataset, VectorSet rows) =>
        WriteFile(path, [PendingDataset.Of(dataset, rows)], null);

    /// <summary>Writes a file holding only int32 dataset <paramref name="dataset"/>.</summary>
    internal static void WriteSingle(string path, string dataset, IntMatrix values) =>
        WriteFile(path, [PendingDataset.Of(dataset, values)], null);

    /// <summary>One dataset to write; exactly one of the three sources is set.</summary>
    private sealed record PendingDataset(string Name, int Rows, int Cols, float[]? Floats, VectorSet? Set, int[]? Ints)
    {
        public static PendingDataset Of(string name, VectorSet set) => new(name, set.Count, set.Dimension, null, set, null);

        public static PendingDataset Of(string name, IntMatrix m) => new(name, m.Rows, m.Cols, null, null, m.Data);
    }

    private static void WriteFile(string path, List<PendingDataset> datasets, string? distance)
    {
        var file = new H5File();
        if (distance != null)
            file.Attributes[DistanceAttribute] = distance;
        var handles = new List<(PendingDataset Source, H5Dataset Target)>();
        foreach (var d in datasets)
        {
            if (d.Set != null || d.Floats != null)
            {
                var floats = d.Floats ?? [];
                if (d.Floats != null && MatrixReader.FirstNonFinite(floats) is int bad && bad >= 0)
                    throw new ArgumentException($"Dataset '{d.Name}' row {bad / d.Cols} column {bad % d.Cols} is {MatrixReader.Describe(floats[bad])}; only finite values can be written.");
                var target = new H5Dataset<float[]>(fileDims: [(ulong)d.Rows, (ulong)d.Cols]);
                file[d.Name] = target;
                handles.Add((d, target));
            }
            else
            {
                var target = new H5Dataset<int[]>(fileDims: [(ulong)d.Rows, (ulong)d.Cols]);
                file[d.Name] = target;
                handles.Add((d, target));
            }
        }

        using var atomic = new AtomicFile(path);
        using (var writer = file.BeginWrite(atomic.Stream))
        {
            foreach (var (source, target) in handles)
                WriteRows(writer, source, target);
        }
        atomic.Commit();
    }

    private static void WriteRows(H5NativeWriter writer, PendingDataset source, H5Dataset target)
    {
        int cols = source.Cols;
        int rowsPerChunk = Math.Max(1, FormatLimits.ChunkElements / cols);
        for (int start = 0; start < source.Rows; start += rowsPerChunk)
        {
            int count = Math.Min(rowsPerChunk, source.Rows - start);
            var slab = RowSlab(start, count, cols);
            if (source.Ints != null)
            {
                writer.Write((H5Dataset<int[]>)target, source.Ints[(start * cols)..((start + count) * cols)], fileSelection: slab);
                continue;
            }
            float[] chunk = source.Floats != null
                ? source.Floats[(start * cols)..((start + count) * cols)]
                : source.Set!.RowBlock(start, count).ToArray();
            if (source.Set != null && MatrixReader.FirstNonFinite(chunk) is int bad && bad >= 0)
                throw new ArgumentException($"Dataset '{source.Name}' row {start + bad / cols} column {bad % cols} is {MatrixReader.Describe(chunk[bad])}; only finite values can be written.");
            writer.Write((H5Dataset<float[]>)target, chunk, fileSelection: slab);
        }
    }

    private static HyperslabSelection RowSlab(int start, int count, int cols) =>
        new(rank: 2, starts: [(ulong)start, 0], blocks: [(ulong)count, (ulong)cols]);

    private static NativeFile Open(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"HDF5 file '{path}' does not exist.", path);
        try
        {
            return H5File.OpenRead(path);
        }
        catch (Exception ex) when (ex is not IOException and not UnauthorizedAccessException)
        {
            throw new DatasetFormatException(path, -1, $"not a readable HDF5 file ({ex.Message})", ex);
        }
    }

    private static (NativeDataset Dataset, long Rows, int Dim, DatasetElementType Type) OpenMatrix(NativeFile file, string path, string dataset)
    {
        if (!Wrap(path, dataset, () => file.LinkExists(dataset)))
        {
            var names = Wrap(path, "/", () => file.Children().Select(c => c.Name).ToList());
            throw new DatasetFormatException(path, -1,
                $"has no dataset '{dataset}'; it holds: {(names.Count == 0 ? "nothing" : string.Join(", ", names))}");
        }
        var ds = Wrap(path, dataset, () => file.Get(dataset)) as NativeDataset
            ?? throw new DatasetFormatException(path, -1, $"'{dataset}' is not a dataset");
        var dims = ds.Space.Dimensions;
        if (dims.Length != 2)
            throw new DatasetFormatException(path, -1,
                $"dataset '{dataset}' has rank {dims.Length} (shape [{string.Join(", ", dims)}]); expected a 2-D (rows, dim) matrix");
        if (dims[0] > int.MaxValue)
            throw new DatasetFormatException(path, -1, $"dataset '{dataset}' has {dims[0]} rows, more than the {int.MaxValue} this library holds");
        FormatLimits.CheckDimension(path, -1, (long)Math.Min(dims[1], long.MaxValue), $"dataset '{dataset}' has");
        var type = ds.Type;
        DatasetElementType element = (type.Class, type.Size) switch
        {
            (H5DataTypeClass.FloatingPoint, 4) => DatasetElementType.Float32,
            (H5DataTypeClass.FixedPoint, 4) when type.FixedPoint.IsSigned => DatasetElementType.Int32,
            (H5DataTypeClass.FixedPoint, 8) when type.FixedPoint.IsSigned => DatasetElementType.Int64,
            _ => throw new DatasetFormatException(path, -1,
                $"dataset '{dataset}' has HDF5 type {type.Class} of {type.Size} bytes; expected float32, int32 or int64"),
        };
        return (ds, (long)dims[0], (int)dims[1], element);
    }

    /// <summary>PureHDF reports corrupt structures with assorted exception types; callers get one with the file and dataset named.</summary>
    private static T Wrap<T>(string path, string dataset, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception ex) when (ex is not DatasetFormatException and not OutOfMemoryException)
        {
            throw new DatasetFormatException(path, -1, $"cannot read '{dataset}' ({ex.Message})", ex);
        }
    }

    private static void Wrap(string path, string dataset, Action action) =>
        Wrap<bool>(path, dataset, () => { action(); return true; });
}
