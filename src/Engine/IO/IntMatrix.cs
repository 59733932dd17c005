namespace Adanns.Engine.IO;

/// <summary>
/// Rows × Cols int32 values, row-major, in a managed array: ground-truth neighbour ids or labels
/// (a label vector is a Rows × 1 matrix).
/// </summary>
public sealed class IntMatrix
{
    /// <summary>Wraps <paramref name="data"/> (not copied) as a <paramref name="rows"/> × <paramref name="cols"/> matrix.</summary>
    public IntMatrix(int rows, int cols, int[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (rows < 0)
            throw new ArgumentOutOfRangeException(nameof(rows), rows, "Row count must be non-negative.");
        if (cols <= 0)
            throw new ArgumentOutOfRangeException(nameof(cols), cols, "Column count must be positive.");
        if ((long)rows * cols != data.Length)
            throw new ArgumentException($"Data holds {data.Length} values; {rows} × {cols} needs {(long)rows * cols}.", nameof(data));
        Rows = rows;
        Cols = cols;
        Data = data;
    }

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Values per row.</summary>
    public int Cols { get; }

    /// <summary>All values, row-major (Rows × Cols).</summary>
    public int[] Data { get; }

    /// <summary>Row <paramref name="index"/>.</summary>
    public ReadOnlySpan<int> Row(int index)
    {
        if ((uint)index >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Row index must be in [0, {Rows}).");
        return Data.AsSpan(index * Cols, Cols);
    }
}
