namespace Adanns.Engine.IO;

/// <summary>Consecutive rows of a vector file, as <see cref="VectorFile.ReadVectorChunks"/> yields them.</summary>
/// <param name="FirstRow">Row number (in the file) of the first row.</param>
/// <param name="Count">Rows in the chunk.</param>
/// <param name="Dimension">Floats per row.</param>
/// <param name="Rows">Count × Dimension floats, row-major, decoded and checked finite. The reader reuses this buffer:
/// it is valid only until the next chunk is read.</param>
public readonly record struct VectorChunk(long FirstRow, int Count, int Dimension, ReadOnlyMemory<float> Rows)
{
    /// <summary>Row <paramref name="index"/> of the chunk (0 ≤ index &lt; <see cref="Count"/>).</summary>
    public ReadOnlySpan<float> Row(int index) => Rows.Span.Slice(index * Dimension, Dimension);
}
