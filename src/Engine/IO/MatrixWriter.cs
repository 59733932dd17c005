using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Adanns.Engine.IO;

/// <summary>The three flat binary layouts <see cref="MatrixWriter"/> produces.</summary>
internal enum MatrixFileKind
{
    /// <summary>fvecs / bvecs / ivecs: an int32 dim before every row.</summary>
    Vecs,

    /// <summary>fbin / u8bin / ibin: uint32 rows, uint32 dim, then the values.</summary>
    Bin,

    /// <summary>NumPy .npy v1.0.</summary>
    Npy,
}

/// <summary>
/// Streams a rows × dim matrix to a <see cref="MatrixFileKind"/> file through an <see cref="AtomicFile"/>.
/// Rows are encoded in bounded chunks, so writing a huge <see cref="VectorSet"/> never materialises it in the
/// managed heap. Values the matching reader would reject (NaN, ±Inf, bytes outside 0..255, float16 overflow)
/// are refused here with <see cref="ArgumentException"/>, so every file written can be read back.
/// </summary>
internal sealed class MatrixWriter : IDisposable
{
    private readonly AtomicFile _file;
    private readonly MatrixFileKind _kind;
    private readonly DatasetElementType _type;
    private readonly int _dim;
    private readonly long _rows;
    private long _written;
    private byte[]? _scratch;

    public MatrixWriter(string path, MatrixFileKind kind, DatasetElementType type, long rows, int dim, int npyRank = 2)
    {
        FormatLimits.CheckLittleEndianHost();
        if (dim <= 0 || dim > FormatLimits.MaxDimension)
            throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Dimension must be in [1, {FormatLimits.MaxDimension}].");
        if (rows < 0 || rows > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(rows), rows, $"Row count must be in [0, {int.MaxValue}].");
        _kind = kind;
        _type = type;
        _dim = dim;
        _rows = rows;
        _file = new AtomicFile(path);
        try
        {
            if (kind == MatrixFileKind.Bin)
            {
                Span<byte> header = stackalloc byte[8];
                BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)rows);
                BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)dim);
                _file.Stream.Write(header);
            }
            else if (kind == MatrixFileKind.Npy)
            {
                _file.Stream.Write(NpyFormat.BuildHeader(type, rows, dim, npyRank));
            }
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>Appends whole rows of float values (the file's element type must be float-like).</summary>
    public void WriteFloats(ReadOnlySpan<float> block)
    {
        if (!_type.IsFloatLike())
            throw new InvalidOperationException($"This writer stores {_type.Name()} values, not floats.");
        int n = CheckBlock(block.Length);
        int bad = MatrixReader.FirstNonFinite(block);
        if (bad >= 0)
            throw new ArgumentException($"Row {_written + bad / _dim} column {bad % _dim} is {MatrixReader.Describe(block[bad])}; only finite values can be written.", nameof(block));
        if (_kind == MatrixFileKind.Vecs)
        {
            for (int r = 0; r < n; r++)
            {
                WriteDimHeader();
                EncodeFloats(block.Slice(r * _dim, _dim), (_written + r) * _dim);
            }
        }
        else
        {
            EncodeFloats(block, _written * _dim);
        }
        _written += n;
    }

    /// <summary>Appends whole rows of int32 values (the file's element type must be int32).</summary>
    public void WriteInts(ReadOnlySpan<int> block)
    {
        if (_type != DatasetElementType.Int32)
            throw new InvalidOperationException($"This writer stores {_type.Name()} values, not int32.");
        int n = CheckBlock(block.Length);
        if (_kind == MatrixFileKind.Vecs)
        {
            for (int r = 0; r < n; r++)
            {
                WriteDimHeader();
                _file.Stream.Write(MemoryMarshal.AsBytes(block.Slice(r * _dim, _dim)));
            }
        }
        else
        {
            _file.Stream.Write(MemoryMarshal.AsBytes(block));
        }
        _written += n;
    }

    /// <summary>Publishes the file under its final name; every declared row must have been written.</summary>
    public void Commit()
    {
        if (_written != _rows)
            throw new InvalidOperationException($"Declared {_rows} rows but wrote {_written}.");
        _file.Commit();
    }

    public void Dispose() => _file.Dispose();

    private int CheckBlock(int length)
    {
        if (length % _dim != 0)
            throw new ArgumentException($"Row data length {length} is not a multiple of dimension {_dim}.");
        int n = length / _dim;
        if (_written + n > _rows)
            throw new InvalidOperationException($"Writing {n} more rows would exceed the {_rows} declared.");
        return n;
    }

    private void WriteDimHeader()
    {
        Span<byte> header = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, _dim);
        _file.Stream.Write(header);
    }

    /// <summary>Encodes finite floats as the file's element type; <paramref name="firstIndex"/> locates errors.</summary>
    private void EncodeFloats(ReadOnlySpan<float> values, long firstIndex)
    {
        if (_type == DatasetElementType.Float32)
        {
            _file.Stream.Write(MemoryMarshal.AsBytes(values));
            return;
        }
        _scratch ??= new byte[FormatLimits.ChunkElements * _type.Size()];
        for (int start = 0; start < values.Length; start += FormatLimits.ChunkElements)
        {
            var chunk = values.Slice(start, Math.Min(FormatLimits.ChunkElements, values.Length - start));
            if (_type == DatasetElementType.Float16)
            {
                var halves = MemoryMarshal.Cast<byte, Half>(_scratch.AsSpan(0, chunk.Length * 2));
                TensorPrimitives.ConvertToHalf(chunk, halves);
                for (int i = 0; i < halves.Length; i++)
                    if (Half.IsInfinity(halves[i]))
                        throw Invalid(firstIndex + start + i, chunk[i], "is outside the float16 range (±65504)");
                _file.Stream.Write(_scratch, 0, chunk.Length * 2);
            }
            else
            {
                var bytes = _scratch.AsSpan(0, chunk.Length);
                for (int i = 0; i < chunk.Length; i++)
                {
                    float v = chunk[i];
                    if (!(v >= 0 && v <= 255 && v == MathF.Floor(v)))
                        throw Invalid(firstIndex + start + i, v, "is not an integer in 0..255, so it cannot be stored as uint8");
                    bytes[i] = (byte)v;
                }
                _file.Stream.Write(bytes);
            }
        }
    }

    private ArgumentException Invalid(long index, float value, string problem) =>
        new($"Row {index / _dim} column {index % _dim} value {value} {problem}.", "rows");
}
