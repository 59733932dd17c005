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
/// <item>IDX (MNIST, Fashion-MNIST): names ending in <c>-ubyte</c> or <c>.idx</c>, or holding <c>idx1</c>…<c>idx4</c>,
/// optionally gzip-compressed (<c>.gz</c>): big-endian uint8 / int32 / float32. An n × rows × cols image file is
/// n vectors of rows·cols dims (bytes keep their 0..255 values); a 1-D label file is an n × 1 integer matrix.</item>
/// </list>
/// Readers memory-map the file (HDF5: hyperslab row chunks; IDX: a forward stream, decompressed on the fly) and decode in bounded chunks into the result, so
/// the file is never copied whole into the managed heap. Everything read from disk is validated before any
/// allocation; malformed files raise <see cref="DatasetFormatException"/>. Writers go to a temporary file in
/// the target directory which is renamed over the target only when complete.
/// </summary>
public static class VectorFile
{
    /// <summary>The name endings this class understands, lower case (IDX names may also just contain <c>idx1</c>…<c>idx4</c>).</summary>
    public static IReadOnlyList<string> SupportedExtensions { get; } =
        [".fvecs", ".bvecs", ".ivecs", ".fbin", ".u8bin", ".ibin", ".npy", ".hdf5", ".h5", "-ubyte", "-ubyte.gz", ".idx", ".idx.gz"];

    /// <summary>
    /// Reads float vectors (fvecs, bvecs, fbin, u8bin, npy f4/f2/u1, HDF5 float32, IDX uint8/float32 of 2 to 4
    /// dimensions, the trailing ones flattened), at most <paramref name="limit"/> rows.
    /// </summary>
    public static VectorSet ReadVectors(string path, int? limit = null)
    {
        var (file, dataset, format) = Resolve(path);
        if (format == Format.Hdf5)
            return AnnBenchmarksHdf5.ReadVectors(file, dataset ?? "train", limit);
        if (format == Format.Idx)
            return IdxFormat.ReadVectors(file, limit);
        using var mapped = MappedFile.Open(file);
        var (layout, rank, shapeOffset) = ParseFlat(mapped, format);
        if (rank == 1)
            throw new DatasetFormatException(file, shapeOffset,
                $"1-D array of shape ({layout.Rows},): vector files must be 2-D (rows, dim); reshape to (n, 1) or read it with ReadInts if it holds labels");
        return MatrixReader.ReadVectors(mapped, layout, limit);
    }

    /// <summary>
    /// Reads the same rows as <see cref="ReadVectors"/> (at most <paramref name="limit"/>), but yields them in chunks of
    /// at most 2^20 floats through one reused buffer, so a file of any size streams in bounded memory (an import, a
    /// conversion). Each <see cref="VectorChunk"/> is valid until the next one is read. The file stays open until the
    /// enumeration ends or is disposed; a malformed row raises <see cref="DatasetFormatException"/> when its chunk is read.
    /// </summary>
    public static IEnumerable<VectorChunk> ReadVectorChunks(string path, int? limit = null)
    {
        var (file, dataset, format) = Resolve(path);
        if (limit is < 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "Row limit must be non-negative.");
        if (format == Format.Hdf5) return AnnBenchmarksHdf5.ReadVectorChunks(file, dataset ?? "train", limit);
        if (format == Format.Idx) return IdxFormat.ReadVectorChunks(file, limit);
        return FlatChunks(file, format, limit);
    }

    private static IEnumerable<VectorChunk> FlatChunks(string file, Format format, int? limit)
    {
        using var mapped = MappedFile.Open(file);
        var (layout, rank, shapeOffset) = ParseFlat(mapped, format);
        if (rank == 1)
            throw new DatasetFormatException(file, shapeOffset,
                $"1-D array of shape ({layout.Rows},): vector files must be 2-D (rows, dim); reshape to (n, 1) or read it with ReadInts if it holds labels");
        int rows = MatrixReader.CheckVectors(mapped, layout, limit);
        foreach (var chunk in MatrixReader.Chunks(mapped, layout, rows)) yield return chunk;
    }

    /// <summary>
    /// Reads an integer matrix (ivecs, ibin, npy i4/i8 1-D or 2-D, HDF5 int32/int64, IDX uint8/int32 1-D or 2-D:
    /// 3-D and 4-D IDX files are images and are refused), at most <paramref name="limit"/> rows.
    /// </summary>
    public static IntMatrix ReadInts(string path, int? limit = null)
    {
        var (file, dataset, format) = Resolve(path);
        if (format == Format.Hdf5)
            return AnnBenchmarksHdf5.ReadInts(file, dataset ?? "neighbors", limit);
        if (format == Format.Idx)
            return IdxFormat.ReadInts(file, limit);
        using var mapped = MappedFile.Open(file);
        var (layout, _, _) = ParseFlat(mapped, format);
        return MatrixReader.ReadInts(mapped, layout, limit);
    }

    /// <summary>
    /// Rows, dim and element type from the header alone (a 1-D .npy or IDX reports dim 1; an IDX n × rows × cols
    /// file reports dim rows·cols). For *vecs files the per-row dim headers are still checked, which touches one
    /// int per row but no data. A gzip IDX file's data length is not checked here (that needs decompressing it all).
    /// </summary>
    public static DatasetInfo GetInfo(string path)
    {
        var (file, dataset, format) = Resolve(path);
        if (format == Format.Hdf5)
            return AnnBenchmarksHdf5.GetInfo(file, dataset ?? "train");
        if (format == Format.Idx)
            return IdxFormat.GetInfo(file);
        using var mapped = MappedFile.Open(file);
        return ParseFlat(mapped, format).Layout.Info;
    }

    /// <summary>
    /// Writes <paramref name="rows"/> (n × <paramref name="dim"/>, row-major). <paramref name="elementType"/> picks
    /// the npy dtype (Float32 default, Float16, UInt8); other formats have one element type each and reject a different one.
    /// An IDX name gets a 2-D n × dim file (UInt8 default, Float32); images go through <see cref="WriteIdx(string, VectorSet, int, int)"/>.
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
        if (format == Format.Idx)
        {
            WriteIdxFloats(file, CheckType(path, format, elementType), rows, [rows.Length / dim, dim]);
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
        if (format == Format.Idx)
        {
            WriteIdxFloats(file, CheckType(path, format, elementType), vectors, [vectors.Count, vectors.Dimension]);
            return;
        }
        using var writer = CreateWriter(file, path, format, elementType, vectors.Count, vectors.Dimension);
        // RowBlock spans are capped at 2^31 floats, so large sets go out in blocks.
        int rowsPerBlock = Math.Max(1, FormatLimits.ChunkElements / vectors.Dimension);
        for (int start = 0; start < vectors.Count; start += rowsPerBlock)
            writer.WriteFloats(vectors.RowBlock(start, Math.Min(rowsPerBlock, vectors.Count - start)));
        writer.Commit();
    }

    /// <summary>
    /// Writes <paramref name="values"/> as int32 to .ivecs, .ibin, .npy ('&lt;i4', 2-D), HDF5 (default dataset "neighbors")
    /// or IDX (1-D when there is one column, else 2-D; uint8 labels go through <see cref="WriteIdx(string, IntMatrix, DatasetElementType)"/>).
    /// </summary>
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
            case Format.Idx:
                WriteIdxInts(file, values, DatasetElementType.Int32);
                return;
            default:
                throw new ArgumentException($"'{Path.GetFileName(file)}' is a float vector format; write integers to .ivecs, .ibin, .npy, .hdf5 or IDX.", nameof(path));
        }
    }

    /// <summary>
    /// Writes <paramref name="images"/> (n × <paramref name="imageRows"/>·<paramref name="imageCols"/>, row-major) as a
    /// 3-D uint8 IDX file n × <paramref name="imageRows"/> × <paramref name="imageCols"/>, the MNIST image layout.
    /// Every value must be an integer in 0..255 and n must be positive (IDX sizes cannot be 0). The path must be
    /// an IDX name (e.g. <c>train-images-idx3-ubyte</c>); a <c>.gz</c> ending gzip-compresses the file. The file
    /// appears under its name only when complete.
    /// </summary>
    public static void WriteIdx(string path, ReadOnlySpan<float> images, int imageRows, int imageCols)
    {
        int dim = CheckImageShape(imageRows, imageCols);
        if (images.Length % dim != 0)
            throw new ArgumentException($"Image data length {images.Length} is not a multiple of {imageRows} × {imageCols}.", nameof(images));
        WriteIdxFloats(ResolveIdx(path), DatasetElementType.UInt8, images, [images.Length / dim, imageRows, imageCols]);
    }

    /// <summary>Writes every row of <paramref name="images"/>; see <see cref="WriteIdx(string, ReadOnlySpan{float}, int, int)"/>.</summary>
    public static void WriteIdx(string path, VectorSet images, int imageRows, int imageCols)
    {
        ArgumentNullException.ThrowIfNull(images);
        int dim = CheckImageShape(imageRows, imageCols);
        if (images.Dimension != dim)
            throw new ArgumentException($"The set holds {images.Dimension}-dim rows, not {imageRows} × {imageCols} = {dim}.", nameof(images));
        WriteIdxFloats(ResolveIdx(path), DatasetElementType.UInt8, images, [images.Count, imageRows, imageCols]);
    }

    /// <summary>
    /// Writes <paramref name="labels"/> as an IDX file: 1-D (n) when it has one column, the MNIST label layout,
    /// else 2-D (n × cols). <paramref name="elementType"/> is UInt8 (default; values must be in 0..255) or Int32.
    /// Path rules as for <see cref="WriteIdx(string, ReadOnlySpan{float}, int, int)"/>.
    /// </summary>
    public static void WriteIdx(string path, IntMatrix labels, DatasetElementType elementType = DatasetElementType.UInt8)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (elementType is not (DatasetElementType.UInt8 or DatasetElementType.Int32))
            throw new ArgumentException($"IDX integers are stored as uint8 or int32, not {elementType.Name()}.", nameof(elementType));
        WriteIdxInts(ResolveIdx(path), labels, elementType);
    }

    private static int CheckImageShape(int imageRows, int imageCols)
    {
        if (imageRows <= 0)
            throw new ArgumentOutOfRangeException(nameof(imageRows), imageRows, "Image rows must be positive.");
        if (imageCols <= 0)
            throw new ArgumentOutOfRangeException(nameof(imageCols), imageCols, "Image columns must be positive.");
        long dim = (long)imageRows * imageCols;
        if (dim > FormatLimits.MaxDimension)
            throw new ArgumentException($"Images of {imageRows} × {imageCols} = {dim} values exceed the supported maximum dim {FormatLimits.MaxDimension}.", nameof(imageCols));
        return (int)dim;
    }

    private static string ResolveIdx(string path)
    {
        var (file, _, format) = ResolveForWrite(path);
        if (format != Format.Idx)
            throw new ArgumentException($"'{Path.GetFileName(file)}' is not an IDX name; use one ending in -ubyte or .idx (add .gz to compress).", nameof(path));
        return file;
    }

    private static void WriteIdxFloats(string file, DatasetElementType type, ReadOnlySpan<float> values, int[] sizes)
    {
        using var writer = new IdxWriter(file, type, sizes);
        writer.WriteFloats(values);
        writer.Commit();
    }

    private static void WriteIdxFloats(string file, DatasetElementType type, VectorSet vectors, int[] sizes)
    {
        using var writer = new IdxWriter(file, type, sizes);
        // RowBlock spans are capped at 2^31 floats, so large sets go out in blocks.
        int rowsPerBlock = Math.Max(1, FormatLimits.ChunkElements / vectors.Dimension);
        for (int start = 0; start < vectors.Count; start += rowsPerBlock)
            writer.WriteFloats(vectors.RowBlock(start, Math.Min(rowsPerBlock, vectors.Count - start)));
        writer.Commit();
    }

    private static void WriteIdxInts(string file, IntMatrix values, DatasetElementType type)
    {
        using var writer = new IdxWriter(file, type, values.Cols == 1 ? [values.Rows] : [values.Rows, values.Cols]);
        writer.WriteInts(values.Data);
        writer.Commit();
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
        Idx,
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
            Format.Idx => [DatasetElementType.UInt8, DatasetElementType.Float32],
            _ => throw new ArgumentException($"'{Path.GetFileName(path)}' holds integers; write vectors to .fvecs, .bvecs, .fbin, .u8bin, .npy, .hdf5 or IDX.", nameof(path)),
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
        _ => IdxFormat.IsIdxName(file) ? Format.Idx : null,
    };
}
