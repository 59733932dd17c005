namespace Adanns.Engine.IO;

/// <summary>
/// Reads and writes vector and integer datasets, choosing the format from the file extension:
/// <list type="bullet">
/// <item><c>.fvecs</c> / <c>.bvecs</c> / <c>.ivecs</c>: TEXMEX, an int32 dim before every row of float32 / uint8 / int32.</item>
/// <item><c>.fbin</c> / <c>.u8bin</c> / <c>.ibin</c>: big-ann-benchmarks, uint32 rows and uint32 dim, then the values.</item>
/// <item><c>.npy</c>: NumPy v1.0–3.0, C order; '&lt;f4', '&lt;f2', '|u1' vectors, '&lt;i4', '&lt;i8' integers (1-D allowed for integers).</item>
/// <item><c>.hdf5</c> / <c>.h5</c>: ann-benchmarks; a dataset is selected with <c>#name</c> after the file name,
/// e.g. <c>glove-100-angular.hdf5#test</c> (<c>:name</c> is accepted too, but <c>#</c> cannot clash with a Windows
/// drive letter). Without a selector vectors come from <c>train</c> and integers from <c>neighbors</c>.</item>
/// </list>
/// Readers memory-map the file (HDF5: hyperslab row chunks) and decode in bounded chunks into the result, so
/// the file is never copied whole into the managed heap. Everything read from disk is validated before any
/// allocation; malformed files raise <see cref="DatasetFormatException"/>. Writers go to a temporary file in
/// the target directory which is renamed over the target only when complete.
/// </summary>
public static class VectorFile
{
    /// <summary>The extensions this class understands, lower case with the dot.</summary>
    public static IReadOnlyList<string> SupportedExtensions { get; } =
        [".fvecs", ".bvecs", ".ivecs", ".fbin", ".u8bin", ".ibin", ".npy", ".hdf5", ".h5"];

    /// <summary>Reads float vectors (fvecs, bvecs, fbin, u8bin, npy f4/f2/u1, HDF5 float32), at most <paramref name="limit"/> rows.</summary>
    public static VectorSet ReadVectors(string path, int? limit = null)
    {
        var (file, dataset, format) = Resolve(path);
        if (format == Format.Hdf5)
            return AnnBenchmarksHdf5.ReadVectors(file, dataset ?? "train", limit);
        using var mapped = MappedFile.Open(file);
        var (layout, rank, shapeOffset) = ParseFlat(mapped, format);
        if (rank == 1)
            throw new DatasetFormatException(file, shapeOffset,
                $"1-D array of shape ({layout.Rows},): vector files must be 2-D (rows, dim); reshape to (n, 1) or read it with ReadInts if it holds labels");
        return MatrixReader.ReadVectors(mapped, layout, limit);
    }

    /// <summary>Reads an integer matrix (ivecs, ibin, npy i4/i8 1-D or 2-D, HDF5 int32/int64), at most <paramref name="limit"/> rows.</summary>
    public static IntMatrix ReadInts(string path, int? limit = null)
    {
        var (file, dataset, format) = Resolve(path);
        if (format == Format.Hdf5)
            return AnnBenchmarksHdf5.ReadInts(file, dataset ?? "neighbors", limit);
        using var mapped = MappedFile.Open(file);
        var (layout, _, _) = ParseFlat(mapped, format);
        return MatrixReader.ReadInts(mapped, layout, limit);
    }

    /// <summary>
    /// Rows, dim and element type from the header alone (a 1-D .npy reports dim 1). For *vecs files the per-row
    /// dim headers are still checked, which touches one int per row but no data.
    /// </summary>
    public static DatasetInfo GetInfo(string path)
    {
        var (file, dataset, format) = Resolve(path);
        if (format == Format.Hdf5)
            return AnnBenchmarksHdf5.GetInfo(file, dataset ?? "train");
        using var mapped = MappedFile.Open(file);
        return ParseFlat(mapped, format).Layout.Info;
    }

    /// <summary>
    /// Writes <paramref name="rows"/> (n × <paramref name="dim"/>, row-major). <paramref name="elementType"/> picks
    /// the npy dtype (Float32 default, Float16, UInt8); other formats have one element type each and reject a different one.
    /// Writing to HDF5 creates a file holding just the selected dataset (default "train"); use
    /// <see cref="AnnBenchmarksHdf5.Write"/> for a complete ann-benchmarks file.
    /// </summary>
    public static void WriteVectors(string path, ReadOnlySpan<float> rows, int dim, DatasetElementType? elementType = null)
    {
        if (dim <= 0 || dim > FormatLimits.MaxDimension)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Dimension must be in [1, {FormatLimits.MaxDimension}].");
        if (rows.Length % dim != 0)
            throw new ArgumentException($"Row data length {rows.Length} is not a multiple of dimension {dim}.", nameof(rows));
        var (file, dataset, format) = ResolveForWrite(path);
        if (format == Format.Hdf5)
        {
            CheckType(path, format, elementType);
            using var set = VectorSet.FromRows(rows, dim);
            AnnBenchmarksHdf5.WriteSingle(file, dataset ?? "train", set);
            return;
        }
        using var writer = CreateWriter(file, path, format, elementType, rows.Length / dim, dim);
        writer.WriteFloats(rows);
        writer.Commit();
    }

    /// <summary>Writes every row of <paramref name="vectors"/>; see <see cref="WriteVectors(string, ReadOnlySpan{float}, int, DatasetElementType?)"/>.</summary>
    public static void WriteVectors(string path, VectorSet vectors, DatasetElementType? elementType = null)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        var (file, dataset, format) = ResolveForWrite(path);
        if (format == Format.Hdf5)
        {
            CheckType(path, format, elementType);
            AnnBenchmarksHdf5.WriteSingle(file, dataset ?? "train", vectors);
            return;
        }
        using var writer = CreateWriter(file, path, format, elementType, vectors.Count, vectors.Dimension);
        // RowBlock spans are capped at 2^31 floats, so large sets go out in blocks.
        int rowsPerBlock = Math.Max(1, FormatLimits.ChunkElements / vectors.Dimension);
        for (int start = 0; start < vectors.Count; start += rowsPerBlock)
            writer.WriteFloats(vectors.RowBlock(start, Math.Min(rowsPerBlock, vectors.Count - start)));
        writer.Commit();
    }

    /// <summary>Writes <paramref name="values"/> as int32 to .ivecs, .ibin, .npy ('&lt;i4', 2-D) or HDF5 (default dataset "neighbors").</summary>
    public static void WriteInts(string path, IntMatrix values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var (file, dataset, format) = ResolveForWrite(path);
        switch (format)
        {
            case Format.Hdf5:
                AnnBenchmarksHdf5.WriteSingle(file, dataset ?? "neighbors", values);
                return;
            case Format.Ivecs or Format.Ibin or Format.Npy:
                var kind = format switch
                {
                    Format.Ivecs => MatrixFileKind.Vecs,
                    Format.Ibin => MatrixFileKind.Bin,
                    _ => MatrixFileKind.Npy,
                };
                using (var writer = new MatrixWriter(file, kind, DatasetElementType.Int32, values.Rows, values.Cols))
                {
                    writer.WriteInts(values.Data);
                    writer.Commit();
                }
                return;
            default:
                throw new ArgumentException($"'{Path.GetFileName(file)}' is a float vector format; write integers to .ivecs, .ibin, .npy or .hdf5.", nameof(path));
        }
    }

    private enum Format
    {
        Fvecs,
        Bvecs,
        Ivecs,
        Fbin,
        U8bin,
        Ibin,
        Npy,
        Hdf5,
    }

    private static (MatrixLayout Layout, int Rank, long ShapeOffset) ParseFlat(MappedFile mapped, Format format)
    {
        switch (format)
        {
            case Format.Fvecs: return (VecsFormat.Parse(mapped, DatasetElementType.Float32), 2, -1);
            case Format.Bvecs: return (VecsFormat.Parse(mapped, DatasetElementType.UInt8), 2, -1);
            case Format.Ivecs: return (VecsFormat.Parse(mapped, DatasetElementType.Int32), 2, -1);
            case Format.Fbin: return (BinFormat.Parse(mapped, DatasetElementType.Float32), 2, -1);
            case Format.U8bin: return (BinFormat.Parse(mapped, DatasetElementType.UInt8), 2, -1);
            case Format.Ibin: return (BinFormat.Parse(mapped, DatasetElementType.Int32), 2, -1);
            case Format.Npy:
                var header = NpyFormat.Parse(mapped);
                return (header.Layout, header.Rank, header.ShapeOffset);
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "Not a flat binary format.");
        }
    }

    private static MatrixWriter CreateWriter(string file, string path, Format format, DatasetElementType? elementType, long rows, int dim)
    {
        var type = CheckType(path, format, elementType);
        var kind = format switch
        {
            Format.Fvecs or Format.Bvecs => MatrixFileKind.Vecs,
            Format.Fbin or Format.U8bin => MatrixFileKind.Bin,
            _ => MatrixFileKind.Npy,
        };
        return new MatrixWriter(file, kind, type, rows, dim);
    }

    /// <summary>The element type a vector write to <paramref name="format"/> uses, rejecting a requested type it cannot store.</summary>
    private static DatasetElementType CheckType(string path, Format format, DatasetElementType? requested)
    {
        DatasetElementType[] allowed = format switch
        {
            Format.Fvecs or Format.Fbin or Format.Hdf5 => [DatasetElementType.Float32],
            Format.Bvecs or Format.U8bin => [DatasetElementType.UInt8],
            Format.Npy => [DatasetElementType.Float32, DatasetElementType.Float16, DatasetElementType.UInt8],
            _ => throw new ArgumentException($"'{Path.GetFileName(path)}' holds integers; write vectors to .fvecs, .bvecs, .fbin, .u8bin, .npy or .hdf5.", nameof(path)),
        };
        var type = requested ?? allowed[0];
        if (Array.IndexOf(allowed, type) < 0)
            throw new ArgumentException($"'{Path.GetFileName(path)}' cannot store {type.Name()} values; it stores {string.Join(" or ", allowed.Select(t => t.Name()))}.", nameof(requested));
        return type;
    }

    private static (string File, string? Dataset, Format Format) Resolve(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var (file, dataset) = SplitSelector(path);
        var format = FormatOf(file) ?? throw new DatasetFormatException(path, -1,
            $"unsupported extension '{Path.GetExtension(file)}'; supported: {string.Join(", ", SupportedExtensions)}");
        return (file, dataset, format);
    }

    private static (string File, string? Dataset, Format Format) ResolveForWrite(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var (file, dataset) = SplitSelector(path);
        var format = FormatOf(file) ?? throw new ArgumentException(
            $"Unsupported extension '{Path.GetExtension(file)}' in '{path}'; supported: {string.Join(", ", SupportedExtensions)}.", nameof(path));
        return (file, dataset, format);
    }

    /// <summary>Splits "file.hdf5#name" (or "file.hdf5:name") into file and dataset; other paths pass through.</summary>
    internal static (string File, string? Dataset) SplitSelector(string path)
    {
        foreach (char separator in "#:")
        {
            int i = path.LastIndexOf(separator);
            if (i <= 0 || i == path.Length - 1) continue;
            string head = path[..i];
            if (FormatOf(head) == Format.Hdf5)
                return (head, path[(i + 1)..]);
        }
        return (path, null);
    }

    private static Format? FormatOf(string file) => Path.GetExtension(file).ToLowerInvariant() switch
    {
        ".fvecs" => Format.Fvecs,
        ".bvecs" => Format.Bvecs,
        ".ivecs" => Format.Ivecs,
        ".fbin" => Format.Fbin,
        ".u8bin" => Format.U8bin,
        ".ibin" => Format.Ibin,
        ".npy" => Format.Npy,
        ".hdf5" or ".h5" => Format.Hdf5,
        _ => null,
    };
}
