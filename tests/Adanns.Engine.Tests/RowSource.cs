using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>Caller-space rows by id (ids = row numbers), as a collection's record store serves them.</summary>
internal sealed class RowSource(VectorSet rows) : IVectorSource
{
    public int Dimension => rows.Dimension;

    public void Read(ReadOnlySpan<long> ids, Span<float> destination)
    {
        for (int i = 0; i < ids.Length; i++) rows.Row((int)ids[i]).CopyTo(destination.Slice(i * Dimension, Dimension));
    }
}
