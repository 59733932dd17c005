using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Adanns.Engine.IO;

/// <summary>
/// NumPy .npy files, versions 1.0, 2.0 and 3.0: magic, version, header length, a Python-dict header
/// (descr, fortran_order, shape), then the C-order data. 1-D arrays are accepted only as integer labels.
/// </summary>
internal static partial class NpyFormat
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Numpy pads the header so the data starts on this boundary.</summary>
    private const int Alignment = 64;

    /// <summary>A parsed header: the data layout, the array rank (1 or 2) and where 'shape' sits (for messages).</summary>
    public readonly record struct Header(MatrixLayout Layout, int Rank, long ShapeOffset);

    public static Header Parse(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < 10 || !file.Bytes(0, 6).SequenceEqual(Magic))
            throw new DatasetFormatException(path, 0, "bad magic: not a NumPy .npy file (expected \\x93NUMPY)");
        var version = file.Bytes(6, 2);
        int major = version[0], minor = version[1];
        long headerStart;
        long headerLength;
        if (major == 1)
        {
            headerStart = 10;
            headerLength = file.ReadUInt16(8);
        }
        else if (major is 2 or 3)
        {
            if (file.Length < 12)
                throw new DatasetFormatException(path, 8, "file ends inside the header length");
            headerStart = 12;
            headerLength = file.ReadUInt32(8);
        }
        else
        {
            throw new DatasetFormatException(path, 6, $"unsupported .npy version {major}.{minor}; expected 1.0, 2.0 or 3.0");
        }
        if (headerStart + headerLength > file.Length)
            throw new DatasetFormatException(path, 8, $"header length {headerLength} runs past the end of the {file.Length}-byte file");
        if (headerLength > FormatLimits.ChunkElements)
            throw new DatasetFormatException(path, 8, $"header length {headerLength} is implausibly large");

        var raw = file.Bytes(headerStart, (int)headerLength);
        string text = major == 3 ? Encoding.UTF8.GetString(raw) : Encoding.Latin1.GetString(raw);
        if (!text.TrimStart().StartsWith('{'))
            throw new DatasetFormatException(path, headerStart, "header is not a Python dict literal");

        var descr = DescrRegex().Match(text);
        if (!descr.Success)
            throw new DatasetFormatException(path, headerStart, "header has no 'descr' (dtype) entry");
        long descrOffset = headerStart + descr.Groups[1].Index;
        var type = ParseDescr(path, descrOffset, descr.Groups[1].Value);

        var fortran = FortranRegex().Match(text);
        if (!fortran.Success)
            throw new DatasetFormatException(path, headerStart, "header has no 'fortran_order' entry");
        if (fortran.Groups[1].Value == "True")
            throw new DatasetFormatException(path, headerStart + fortran.Groups[1].Index,
                "fortran_order is True (column-major); save the array in C order, e.g. np.ascontiguousarray");

        var shape = ShapeRegex().Match(text);
        if (!shape.Success)
            throw new DatasetFormatException(path, headerStart, "header has no 'shape' tuple");
        long shapeOffset = headerStart + shape.Groups[1].Index;
        var dims = new List<long>();
        foreach (var part in shape.Groups[1].Value.Split(','))
        {
            string p = part.Trim();
            if (p.Length == 0) continue;
            if (!long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
                throw new DatasetFormatException(path, shapeOffset, $"shape ({shape.Groups[1].Value}) holds '{p}', not a non-negative integer");
            dims.Add(v);
        }
        if (dims.Count is 0 or > 2)
            throw new DatasetFormatException(path, shapeOffset,
                $"array of shape ({shape.Groups[1].Value}) has {dims.Count} dimensions; expected 2-D (rows, dim) or 1-D labels");

        long rows = dims[0];
        long dim = dims.Count == 2 ? dims[1] : 1;
        if (dims.Count == 2)
            FormatLimits.CheckDimension(path, shapeOffset, dim, "shape declares");
        if (rows > int.MaxValue)
            throw new DatasetFormatException(path, shapeOffset, $"shape declares {rows} rows, more than the {int.MaxValue} this library holds");

        long dataOffset = headerStart + headerLength;
        long rowBytes = dim * type.Size();
        long dataBytes = rows * rowBytes;
        long available = file.Length - dataOffset;
        if (dataBytes > available)
            throw new DatasetFormatException(path, shapeOffset,
                $"shape declares {rows} × {dim} {type.Name()} values ({dataBytes} bytes) but only {available} bytes follow the header");
        if (dataBytes < available)
            throw new DatasetFormatException(path, dataOffset + dataBytes,
                $"{available - dataBytes} unexpected bytes after the {rows} × {dim} array");
        return new Header(new MatrixLayout(dataOffset, rowBytes, rows, (int)dim, type), dims.Count, shapeOffset);
    }

    private static DatasetElementType ParseDescr(string path, long offset, string descr) => descr switch
    {
        "<f4" => DatasetElementType.Float32,
        "<f2" => DatasetElementType.Float16,
        "|u1" or "<u1" => DatasetElementType.UInt8,
        "<i4" => DatasetElementType.Int32,
        "<i8" => DatasetElementType.Int64,
        _ when descr.StartsWith('>') => throw new DatasetFormatException(path, offset,
            $"dtype '{descr}' is big-endian; only little-endian data is supported"),
        _ => throw new DatasetFormatException(path, offset,
            $"unsupported dtype '{descr}'; expected '<f4', '<f2' or '|u1' for vectors, '<i4' or '<i8' for integers"),
    };

    public static string Descr(DatasetElementType type) => type switch
    {
        DatasetElementType.Float32 => "<f4",
        DatasetElementType.Float16 => "<f2",
        DatasetElementType.UInt8 => "|u1",
        DatasetElementType.Int32 => "<i4",
        DatasetElementType.Int64 => "<i8",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown element type."),
    };

    /// <summary>A version 1.0 header for a C-order array of <paramref name="rows"/> × <paramref name="dim"/> (or (rows,) when <paramref name="rank"/> is 1).</summary>
    public static byte[] BuildHeader(DatasetElementType type, long rows, int dim, int rank)
    {
        string shape = rank == 1
            ? string.Create(CultureInfo.InvariantCulture, $"({rows},)")
            : string.Create(CultureInfo.InvariantCulture, $"({rows}, {dim})");
        string dict = $"{{'descr': '{Descr(type)}', 'fortran_order': False, 'shape': {shape}, }}";
        int unpadded = 10 + dict.Length + 1;
        int padding = (Alignment - unpadded % Alignment) % Alignment;
        string header = dict + new string(' ', padding) + "\n";
        var bytes = new byte[10 + header.Length];
        Magic.CopyTo(bytes);
        bytes[6] = 1;
        bytes[7] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), checked((ushort)header.Length));
        Encoding.Latin1.GetBytes(header, bytes.AsSpan(10));
        return bytes;
    }

    [GeneratedRegex(@"['""]descr['""]\s*:\s*['""]([^'""]*)['""]")]
    private static partial Regex DescrRegex();

    [GeneratedRegex(@"['""]fortran_order['""]\s*:\s*(True|False)")]
    private static partial Regex FortranRegex();

    [GeneratedRegex(@"['""]shape['""]\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRegex();
}
