using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Adanns.Engine.IO;

/// <summary>
/// Where a validated matrix lies in a file: row i's <see cref="Dimension"/> elements are contiguous at
/// <see cref="DataOffset"/> + i × <see cref="RowStride"/>. Covers *vecs (stride includes the dim header),
/// *bin and .npy (stride = row bytes).
/// </summary>
internal readonly record struct MatrixLayout(long DataOffset, long RowStride, long Rows, int Dimension, DatasetElementType ElementType)
{
    public DatasetInfo Info => new(Rows, Dimension, ElementType);

    public long RowBytes => (long)Dimension * ElementType.Size();

    public long ElementOffset(long row, int col) => DataOffset + row * RowStride + (long)col * ElementType.Size();
}

/// <summary>Bounds shared by every reader, checked before anything is allocated.</summary>
internal static class FormatLimits
{
    /// <summary>Largest accepted row dimension; larger values in a header almost always mean a corrupt or foreign file.</summary>
    public const int MaxDimension = 1 << 20;

    /// <summary>Floats decoded per chunk (4 MiB), bounding the managed scratch buffer whatever the file size.</summary>
    public const int ChunkElements = 1 << 20;

    public static void CheckDimension(string path, long offset, long dim, string who)
    {
        if (dim <= 0)
            throw new DatasetFormatException(path, offset, $"{who} dim {dim}; a dimension must be positive");
        if (dim > MaxDimension)
            throw new DatasetFormatException(path, offset, $"{who} dim {dim}, above the supported maximum {MaxDimension}");
    }

    public static int ResolveLimit(long rows, int? limit)
    {
        if (limit is int l)
        {
            if (l < 0)
                throw new ArgumentOutOfRangeException(nameof(limit), l, "Row limit must be non-negative.");
            return (int)Math.Min(rows, l);
        }
        return (int)rows;
    }

    public static void CheckLittleEndianHost()
    {
        // Bulk decoding reinterprets little-endian file bytes in place.
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Dataset I/O requires a little-endian host.");
    }
}

/// <summary>Decodes validated rows from a mapped file into a <see cref="VectorSet"/> or <see cref="IntMatrix"/>.</summary>
internal static class MatrixReader
{
    public static VectorSet ReadVectors(MappedFile file, MatrixLayout layout, int? limit)
    {
        int rows = CheckVectors(file, layout, limit);
        var set = new VectorSet(layout.Dimension, rows);
        try
        {
            foreach (var chunk in Chunks(file, layout, rows)) set.AddRange(chunk.Rows.Span);
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>Validates that <paramref name="layout"/> holds vectors; the rows to read under <paramref name="limit"/>.</summary>
    public static int CheckVectors(MappedFile file, MatrixLayout layout, int? limit)
    {
        FormatLimits.CheckLittleEndianHost();
        if (!layout.ElementType.IsFloatLike())
            throw new DatasetFormatException(file.Path, -1, $"holds {layout.ElementType.Name()} values, not vectors; read it as integers");
        return FormatLimits.ResolveLimit(layout.Rows, limit);
    }

    /// <summary>The first <paramref name="rows"/> rows, decoded and checked finite, in chunks of at most <see cref="FormatLimits.ChunkElements"/> floats (one reused buffer).</summary>
    public static IEnumerable<VectorChunk> Chunks(MappedFile file, MatrixLayout layout, int rows)
    {
        if (rows == 0) yield break;
        int dim = layout.Dimension;
        int elem = layout.ElementType.Size();
        int rowsPerChunk = Math.Max(1, FormatLimits.ChunkElements / dim);
        var buffer = new float[(long)Math.Min(rowsPerChunk, rows) * dim];
        bool contiguous = layout.RowStride == layout.RowBytes;
        for (int start = 0; start < rows; start += rowsPerChunk)
        {
            int count = Math.Min(rowsPerChunk, rows - start);
            var dst = buffer.AsSpan(0, count * dim);
            if (contiguous)
            {
                Decode(file.Bytes(layout.ElementOffset(start, 0), count * dim * elem), layout.ElementType, dst);
            }
            else
            {
                for (int r = 0; r < count; r++)
                    Decode(file.Bytes(layout.ElementOffset(start + r, 0), dim * elem), layout.ElementType, dst.Slice(r * dim, dim));
            }
            int bad = FirstNonFinite(dst);
            if (bad >= 0)
            {
                long row = start + bad / dim;
                int col = bad % dim;
                throw new DatasetFormatException(file.Path, layout.ElementOffset(row, col),
                    $"row {row} column {col} is {Describe(dst[bad])}; vectors must be finite");
            }
            yield return new VectorChunk(start, count, dim, buffer.AsMemory(0, count * dim));
        }
    }

    public static IntMatrix ReadInts(MappedFile file, MatrixLayout layout, int? limit)
    {
        FormatLimits.CheckLittleEndianHost();
        if (!layout.ElementType.IsInteger())
            throw new DatasetFormatException(file.Path, -1, $"holds {layout.ElementType.Name()} values, not integers; read it as vectors");
        int rows = FormatLimits.ResolveLimit(layout.Rows, limit);
        int dim = layout.Dimension;
        long total = (long)rows * dim;
        if (total > Array.MaxLength)
            throw new DatasetFormatException(file.Path, -1, $"{rows} rows × {dim} values exceed the {Array.MaxLength} an int matrix can hold; pass a smaller limit");
        var data = new int[total];
        int elem = layout.ElementType.Size();
        for (int r = 0; r < rows; r++)
        {
            var src = file.Bytes(layout.ElementOffset(r, 0), dim * elem);
            var dst = data.AsSpan(r * dim, dim);
            if (layout.ElementType == DatasetElementType.Int32)
            {
                MemoryMarshal.Cast<byte, int>(src).CopyTo(dst);
            }
            else
            {
                var wide = MemoryMarshal.Cast<byte, long>(src);
                for (int c = 0; c < dim; c++)
                {
                    long v = wide[c];
                    if (v < int.MinValue || v > int.MaxValue)
                        throw new DatasetFormatException(file.Path, layout.ElementOffset(r, c),
                            $"row {r} column {c} holds {v}, outside the int32 range");
                    dst[c] = (int)v;
                }
            }
        }
        return new IntMatrix(rows, dim, data);
    }

    /// <summary>Widens little-endian <paramref name="src"/> elements to float.</summary>
    public static void Decode(ReadOnlySpan<byte> src, DatasetElementType type, Span<float> dst)
    {
        switch (type)
        {
            case DatasetElementType.Float32:
                MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case DatasetElementType.Float16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst);
                break;
            case DatasetElementType.UInt8:
                TensorPrimitives.ConvertTruncating<byte, float>(src, dst);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "Not a vector element type.");
        }
    }

    /// <summary>"NaN", "+Inf" or "-Inf": float.ToString renders infinity as a symbol that reads poorly in logs.</summary>
    public static string Describe(float value) =>
        float.IsNaN(value) ? "NaN" : float.IsPositiveInfinity(value) ? "+Inf" : float.IsNegativeInfinity(value) ? "-Inf" : value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Index of the first NaN or ±Inf, or -1; the vectorised all-finite test keeps the common case cheap.</summary>
    public static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        if (TensorPrimitives.IsFiniteAll(values)) return -1;
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }
}
