using Adanns.Engine.Indexes;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Collections;

/// <summary>
/// Full vectors by record key, read from the collection's FASTER record store in batches (records on disk go pending
/// and complete together on one session). Thread-safe.
/// </summary>
internal sealed class RecordVectorSource(RecordStore store, int dimension, string what) : IVectorSource
{
    public int Dimension => dimension;

    /// <summary>Record bytes read into pinned scratch without allocation: the vector plus room for id and payload.</summary>
    private int SlotBytes => 4 * dimension + 512;

    public void Read(ReadOnlySpan<long> ids, Span<float> destination)
    {
        if (destination.Length < ids.Length * dimension)
            throw new ArgumentException($"Destination holds {destination.Length} floats; {ids.Length} × {dimension} needed.", nameof(destination));
        var visitor = new VectorVisitor(destination, dimension, default, what);
        int found = store.ReadMany(ids, SlotBytes, ref visitor);
        if (found != ids.Length)
            throw new AdannsException(AdannsErrorCode.Corrupt, $"{what}: {ids.Length - found} of {ids.Length} indexed records are missing from the record store.");
    }

    /// <summary>Like <see cref="Read"/>, but a missing key (deleted meanwhile) only clears its flag in <paramref name="found"/>.</summary>
    public int ReadAvailable(ReadOnlySpan<long> keys, Span<float> destination, Span<bool> found)
    {
        found[..keys.Length].Clear();
        var visitor = new VectorVisitor(destination, dimension, found, what);
        return store.ReadMany(keys, SlotBytes, ref visitor);
    }

    private ref struct VectorVisitor : IRecordVisitor
    {
        private readonly Span<float> _destination;
        private readonly Span<bool> _found;
        private readonly int _dimension;
        private readonly string _what;

        public VectorVisitor(Span<float> destination, int dimension, Span<bool> found, string what)
        {
            _destination = destination;
            _dimension = dimension;
            _found = found;
            _what = what;
        }

        public void Visit(int index, ReadOnlySpan<byte> value)
        {
            RecordCodec.DecodeVector(value, _destination.Slice(index * _dimension, _dimension), _what);
            if (!_found.IsEmpty) _found[index] = true;
        }
    }
}
