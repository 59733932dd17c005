namespace Adanns.Engine.IO;

/// <summary>
/// TEXMEX *vecs files (fvecs, bvecs, ivecs): every row is an int32 dim followed by dim values. Rows carry no
/// count, so the row count is file size / row size, and every row's dim header is checked (they sit at a
/// fixed stride once row 0's dim is known).
/// </summary>
internal static class VecsFormat
{
    public static MatrixLayout Parse(MappedFile file, DatasetElementType type)
    {
        string kind = KindName(type);
        if (file.Length < 4)
            throw new DatasetFormatException(file.Path, 0, file.Length == 0
                ? $"file is empty; a {kind} file starts with an int32 dim"
                : $"file is {file.Length} bytes, too short for the int32 dim of row 0");
        int dim = file.ReadInt32(0);
        FormatLimits.CheckDimension(file.Path, 0, dim, "row 0 declares");
        long rowSize = 4 + (long)dim * type.Size();
        long fullRows = file.Length / rowSize;
        for (long i = 1; i < fullRows; i++)
        {
            long offset = i * rowSize;
            int d = file.ReadInt32(offset);
            if (d != dim)
                throw new DatasetFormatException(file.Path, offset, $"row {i} declares dim {d} but row 0 had {dim}");
        }
        long rest = file.Length - fullRows * rowSize;
        // A short tail that starts with a different dim is a mismatched last row, not a cut-off one.
        if (rest >= 4 && file.ReadInt32(fullRows * rowSize) is int tailDim && tailDim != dim)
            throw new DatasetFormatException(file.Path, fullRows * rowSize, $"row {fullRows} declares dim {tailDim} but row 0 had {dim}");
        if (rest != 0)
            throw new DatasetFormatException(file.Path, fullRows * rowSize,
                $"truncated last row: row {fullRows} has {rest} bytes but a {dim}-dim {kind} row takes {rowSize} (file size {file.Length} is not a multiple of the row size)");
        if (fullRows > int.MaxValue)
            throw new DatasetFormatException(file.Path, 0, $"{fullRows} rows exceed the {int.MaxValue} this library holds");
        return new MatrixLayout(4, rowSize, fullRows, dim, type);
    }

    public static string KindName(DatasetElementType type) => type switch
    {
        DatasetElementType.Float32 => "fvecs",
        DatasetElementType.UInt8 => "bvecs",
        DatasetElementType.Int32 => "ivecs",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "No *vecs format stores this type."),
    };
}

/// <summary>
/// big-ann-benchmarks *bin files (fbin, u8bin, ibin): uint32 rows, uint32 dim, then rows × dim values.
/// The file size must match the header exactly.
/// </summary>
internal static class BinFormat
{
    public const int HeaderBytes = 8;

    public static MatrixLayout Parse(MappedFile file, DatasetElementType type)
    {
        if (file.Length < HeaderBytes)
            throw new DatasetFormatException(file.Path, 0,
                $"file is {file.Length} bytes, shorter than the 8-byte header (uint32 rows, uint32 dim)");
        uint rows = file.ReadUInt32(0);
        uint dim = file.ReadUInt32(4);
        if (dim > FormatLimits.MaxDimension)
            throw new DatasetFormatException(file.Path, 4, (int)dim < 0
                ? $"header declares dim {(int)dim} (as int32); a dimension must be positive"
                : $"header declares dim {dim}, above the supported maximum {FormatLimits.MaxDimension}");
        FormatLimits.CheckDimension(file.Path, 4, dim, "header declares");
        if (rows > int.MaxValue)
            throw new DatasetFormatException(file.Path, 0, $"header declares {rows} rows, more than the {int.MaxValue} this library holds (or a corrupt header)");
        long rowBytes = (long)dim * type.Size();
        long dataBytes = rows * rowBytes;
        long available = file.Length - HeaderBytes;
        if (dataBytes > available)
            throw new DatasetFormatException(file.Path, 0,
                $"header declares {rows} rows × {dim} dims ({dataBytes} bytes of {type.Name()}) but only {available} bytes follow the header");
        if (dataBytes < available)
            throw new DatasetFormatException(file.Path, HeaderBytes + dataBytes,
                $"{available - dataBytes} unexpected bytes after the {rows} rows × {dim} dims the header declares");
        return new MatrixLayout(HeaderBytes, rowBytes, rows, (int)dim, type);
    }
}
