namespace Adanns.Engine.IO;

/// <summary>The element type stored on disk (little-endian, except in IDX files, which are big-endian).</summary>
public enum DatasetElementType
{
    /// <summary>IEEE 754 binary32 (fvecs, fbin, npy '&lt;f4', HDF5 float32).</summary>
    Float32 = 0,

    /// <summary>IEEE 754 binary16 (npy '&lt;f2'); widened to float32 on read.</summary>
    Float16 = 1,

    /// <summary>Unsigned byte (bvecs, u8bin, npy '|u1'); widened to float32 on read.</summary>
    UInt8 = 2,

    /// <summary>Signed 32-bit integer (ivecs, ibin, npy '&lt;i4', HDF5 int32).</summary>
    Int32 = 3,

    /// <summary>Signed 64-bit integer (npy '&lt;i8', HDF5 int64); narrowed to int32 on read with a range check.</summary>
    Int64 = 4,
}

/// <summary>Shape and element type of a dataset, read from its header only.</summary>
/// <param name="Rows">Number of rows N.</param>
/// <param name="Dimension">Values per row (1 for a 1-D label array).</param>
/// <param name="ElementType">How each value is stored on disk.</param>
public readonly record struct DatasetInfo(long Rows, int Dimension, DatasetElementType ElementType);

/// <summary>Sizes and names of <see cref="DatasetElementType"/>.</summary>
internal static class DatasetElementTypeExtensions
{
    public static int Size(this DatasetElementType type) => type switch
    {
        DatasetElementType.Float32 => 4,
        DatasetElementType.Float16 => 2,
        DatasetElementType.UInt8 => 1,
        DatasetElementType.Int32 => 4,
        DatasetElementType.Int64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown element type."),
    };

    public static string Name(this DatasetElementType type) => type switch
    {
        DatasetElementType.Float32 => "float32",
        DatasetElementType.Float16 => "float16",
        DatasetElementType.UInt8 => "uint8",
        DatasetElementType.Int32 => "int32",
        DatasetElementType.Int64 => "int64",
        _ => type.ToString(),
    };

    public static bool IsFloatLike(this DatasetElementType type) =>
        type is DatasetElementType.Float32 or DatasetElementType.Float16 or DatasetElementType.UInt8;

    public static bool IsInteger(this DatasetElementType type) =>
        type is DatasetElementType.Int32 or DatasetElementType.Int64;
}
