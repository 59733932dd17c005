using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Adanns.Engine.IO;

/// <summary>
/// Shape and element type of an IDX file, validated from its header.
/// Row i's <see cref="RowElements"/> values start at <see cref="DataOffset"/> + i × row bytes.
/// </summary>
internal sealed record IdxHeader(DatasetElementType ElementType, uint[] Sizes, bool Compressed, long FileLength)
{
    /// <summary>Number of dimensions (1 to 4).</summary>
    public int Rank => Sizes.Length;

    /// <summary>The first size: images or labels.</summary>
    public int Rows => (int)Sizes[0];

    /// <summary>Product of the sizes after the first (1 for a 1-D file); checked against the dimension limit.</summary>
    public int RowElements
    {
        get
        {
            long product = 1;
            for (int i = 1; i < Sizes.Length; i++) product *= Sizes[i];
            return (int)product;
        }
    }

    public long DataOffset => 4 + 4L * Rank;

    public long RowBytes => (long)RowElements * ElementType.Size();

    public long DataBytes => Rows * RowBytes;

    public DatasetInfo Info => new(Rows, RowElements, ElementType);

    /// <summary>"2 × 28 × 28 uint8", for messages.</summary>
    public string Shape => $"{string.Join(" × ", Sizes)} {ElementType.Name()}";
}

/// <summary>
/// IDX files (MNIST, Fashion-MNIST, EMNIST): two zero bytes, a type byte (0x08 uint8, 0x0C int32, 0x0D float32),
/// a dims byte (1 to 4), that many big-endian uint32 sizes, then the values row-major and big-endian.
/// A file of n × a × b… is n rows of a·b… values; a 1-D file is n rows of one value (labels).
/// Names ending in <c>.gz</c> are decompressed with <see cref="GZipStream"/> as they are read, in bounded chunks,
/// so neither form is ever held whole in the managed heap.
/// <para>
/// A plain file's length is checked against its header before anything is allocated, so a truncated or
/// overlong file is rejected when its header is read (and so by GetInfo). A gzip stream's decompressed
/// length is unknown until it has been read: a short stream is reported where the data runs out, trailing bytes
/// after the last row (only when every row is read, i.e. no smaller limit), and GetInfo checks the header only.
/// Byte offsets in messages about a .gz file count decompressed bytes.
/// </para>
/// </summary>
internal static class IdxFormat
{
    public const int MaxRank = 4;

    /// <summary>True for IDX names: <c>-ubyte</c> or <c>.idx</c> endings, or an <c>idx1</c>…<c>idx4</c> tag, each optionally followed by <c>.gz</c>.</summary>
    public static bool IsIdxName(string file)
    {
        string name = Path.GetFileName(file).ToLowerInvariant();
        if (name.EndsWith(".gz", StringComparison.Ordinal)) name = name[..^3];
        if (name.EndsWith("-ubyte", StringComparison.Ordinal) || name.EndsWith(".idx", StringComparison.Ordinal))
            return true;
        for (char rank = '1'; rank <= '4'; rank++)
            if (name.Contains("idx" + rank, StringComparison.Ordinal))
                return true;
        return false;
    }

    public static bool IsCompressed(string file) => file.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);

    public static DatasetInfo GetInfo(string path)
    {
        using var reader = IdxReader.Open(path);
        return reader.Header.Info;
    }

    public static VectorSet ReadVectors(string path, int? limit)
    {
        using var reader = IdxReader.Open(path);
        int rows = CheckVectors(reader, limit);
        var header = reader.Header;
        int rowsPerChunk = Math.Max(1, FormatLimits.ChunkElements / header.RowElements);
        // A gzip header cannot be checked against the file length, so a corrupt row count must not size the set.
        var set = new VectorSet(header.RowElements, header.Compressed ? Math.Min(rows, rowsPerChunk) : rows);
        try
        {
            foreach (var chunk in Chunks(reader, rows)) set.AddRange(chunk.Rows.Span);
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>The rows (at most <paramref name="limit"/>) in bounded chunks, read forward; see <see cref="VectorFile.ReadVectorChunks"/>.</summary>
    public static IEnumerable<VectorChunk> ReadVectorChunks(string path, int? limit)
    {
        using var reader = IdxReader.Open(path);
        int rows = CheckVectors(reader, limit);
        foreach (var chunk in Chunks(reader, rows)) yield return chunk;
    }

    private static int CheckVectors(IdxReader reader, int? limit)
    {
        FormatLimits.CheckLittleEndianHost();
        var header = reader.Header;
        if (header.Rank == 1)
            throw reader.Error(3, $"1-D IDX array of {header.Rows} {header.ElementType.Name()} values: vector files need 2 to 4 dimensions (n × d, n × rows × cols); read it with ReadInts if it holds labels");
        if (header.ElementType == DatasetElementType.Int32)
            throw reader.Error(2, "holds int32 values, not vectors; read it as integers");
        return FormatLimits.ResolveLimit(header.Rows, limit);
    }

    private static IEnumerable<VectorChunk> Chunks(IdxReader reader, int rows)
    {
        if (rows == 0) yield break;
        var header = reader.Header;
        int dim = header.RowElements;
        int elem = header.ElementType.Size();
        int rowsPerChunk = Math.Max(1, FormatLimits.ChunkElements / dim);
        int chunkRows = Math.Min(rowsPerChunk, rows);
        var raw = new byte[(long)chunkRows * dim * elem];
        var buffer = new float[(long)chunkRows * dim];
        for (int start = 0; start < rows; start += rowsPerChunk)
        {
            int count = Math.Min(rowsPerChunk, rows - start);
            var src = raw.AsSpan(0, count * dim * elem);
            var dst = buffer.AsSpan(0, count * dim);
            reader.ReadRows(src, start);
            if (header.ElementType == DatasetElementType.UInt8)
            {
                TensorPrimitives.ConvertTruncating<byte, float>(src, dst);
            }
            else
            {
                BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, int>(src), MemoryMarshal.Cast<float, int>(dst));
                int bad = MatrixReader.FirstNonFinite(dst);
                if (bad >= 0)
                {
                    long row = start + bad / dim;
                    int col = bad % dim;
                    throw reader.Error(header.DataOffset + (row * dim + col) * elem,
                        $"row {row} column {col} is {MatrixReader.Describe(dst[bad])}; vectors must be finite");
                }
            }
            if (start + count == rows && rows == header.Rows) reader.CheckEnd();
            yield return new VectorChunk(start, count, dim, buffer.AsMemory(0, count * dim));
        }
    }

    /// <summary>
    /// Reads uint8 or int32 IDX files of rank 1 (labels, n × 1) or 2 (n × d). 3-D and 4-D files are rejected:
    /// they are images, and reading one where labels were meant would otherwise go unnoticed.
    /// </summary>
    public static IntMatrix ReadInts(string path, int? limit)
    {
        FormatLimits.CheckLittleEndianHost();
        using var reader = IdxReader.Open(path);
        var header = reader.Header;
        if (header.ElementType == DatasetElementType.Float32)
            throw reader.Error(2, "holds float32 values, not integers; read it as vectors");
        if (header.Rank > 2)
            throw reader.Error(3, $"{header.Rank}-D IDX array ({header.Shape}) looks like images; integers are read from 1-D (labels) or 2-D (n × d) files; read images with ReadVectors");
        int rows = FormatLimits.ResolveLimit(header.Rows, limit);
        int dim = header.RowElements;
        long total = (long)rows * dim;
        if (total > Array.MaxLength)
            throw reader.Error(-1, $"{rows} rows × {dim} values exceed the {Array.MaxLength} an int matrix can hold; pass a smaller limit");
        int elem = header.ElementType.Size();
        int rowsPerChunk = Math.Max(1, FormatLimits.ChunkElements / dim);
        // As for vectors: an unverified gzip row count grows the array as rows arrive instead of sizing it.
        var data = new int[header.Compressed ? Math.Min(total, (long)rowsPerChunk * dim) : total];
        if (rows > 0)
        {
            var raw = new byte[(long)Math.Min(rowsPerChunk, rows) * dim * elem];
            for (int start = 0; start < rows; start += rowsPerChunk)
            {
                int count = Math.Min(rowsPerChunk, rows - start);
                var src = raw.AsSpan(0, count * dim * elem);
                reader.ReadRows(src, start);
                long end = (long)(start + count) * dim;
                if (end > data.Length)
                    Array.Resize(ref data, (int)Math.Min(total, Math.Max(end, 2L * data.Length)));
                var dst = data.AsSpan(start * dim, count * dim);
                if (header.ElementType == DatasetElementType.UInt8)
                {
                    for (int i = 0; i < src.Length; i++) dst[i] = src[i];
                }
                else
                {
                    BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, int>(src), dst);
                }
            }
            if (rows == header.Rows) reader.CheckEnd();
        }
        return new IntMatrix(rows, dim, data);
    }

    /// <summary>IDX type byte for an element type this format writes.</summary>
    public static byte TypeCode(DatasetElementType type) => type switch
    {
        DatasetElementType.UInt8 => 0x08,
        DatasetElementType.Int32 => 0x0C,
        DatasetElementType.Float32 => 0x0D,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "IDX stores uint8, int32 or float32."),
    };

    private static DatasetElementType? TypeOf(byte code) => code switch
    {
        0x08 => DatasetElementType.UInt8,
        0x0C => DatasetElementType.Int32,
        0x0D => DatasetElementType.Float32,
        _ => null,
    };

    private static string UnsupportedTypeName(byte code) => code switch
    {
        0x09 => " (int8)",
        0x0B => " (int16)",
        0x0E => " (float64)",
        _ => "",
    };

    /// <summary>A forward-only reader over a plain or gzip IDX file that tracks the (decompressed) byte offset.</summary>
    private sealed class IdxReader : IDisposable
    {
        private readonly string _path;
        private readonly Stream _file;
        private readonly Stream _stream;
        private long _position;

        private IdxReader(string path, Stream file, Stream stream)
        {
            _path = path;
            _file = file;
            _stream = stream;
        }

        public IdxHeader Header { get; private set; } = null!;

        private bool Compressed => !ReferenceEquals(_file, _stream);

        private string What => Compressed ? "decompressed data" : "file";

        public static IdxReader Open(string path)
        {
            var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            IdxReader? reader = null;
            try
            {
                Stream stream = IsCompressed(path) ? new GZipStream(file, CompressionMode.Decompress) : file;
                reader = new IdxReader(path, file, stream);
                reader.Header = reader.ReadHeader();
                return reader;
            }
            catch
            {
                if (reader != null) reader.Dispose();
                else file.Dispose();
                throw;
            }
        }

        public DatasetFormatException Error(long offset, string problem, Exception? inner = null) =>
            new(_path, offset, Compressed && offset >= 0 ? problem + " (offset in the decompressed data)" : problem, inner);

        /// <summary>Reads the rows starting at <paramref name="firstRow"/> into <paramref name="dst"/>; a short read is a truncated file.</summary>
        public void ReadRows(Span<byte> dst, long firstRow)
        {
            int got = Fill(dst);
            if (got < dst.Length)
            {
                long row = firstRow + got / Header.RowBytes;
                throw Error(_position, $"truncated: the {What} ends inside row {row}; the header declares {Header.Shape} ({Header.DataBytes} bytes of values after the {Header.DataOffset}-byte header)");
            }
        }

        /// <summary>After the last declared row: anything left is trailing data.</summary>
        public void CheckEnd()
        {
            if (!Compressed) return; // a plain file's length was checked against the header
            long end = _position;
            Span<byte> sink = stackalloc byte[4096];
            long extra = 0;
            int got;
            while ((got = Fill(sink)) > 0) extra += got;
            if (extra > 0)
                throw Error(end, $"{extra} unexpected bytes after the {Header.Shape} values the header declares");
        }

        private IdxHeader ReadHeader()
        {
            Span<byte> magic = stackalloc byte[4];
            int got = Fill(magic);
            if (got < 4)
                throw Error(0, got == 0
                    ? $"{What} is empty; an IDX file starts with two zero bytes, a type byte and a dims byte"
                    : $"{What} is {got} bytes, too short for the 4-byte IDX magic");
            if (magic[0] != 0 || magic[1] != 0)
            {
                string hint = !Compressed && magic[0] == 0x1F && magic[1] == 0x8B
                    ? "; it looks gzip-compressed, so name it with a .gz ending"
                    : "";
                throw Error(magic[0] != 0 ? 0 : 1,
                    $"bad magic 0x{magic[0]:X2} 0x{magic[1]:X2}; an IDX file starts with two zero bytes{hint}");
            }
            var type = TypeOf(magic[2]) ?? throw Error(2,
                $"unsupported IDX type 0x{magic[2]:X2}{UnsupportedTypeName(magic[2])}; supported: 0x08 uint8, 0x0C int32, 0x0D float32");
            int rank = magic[3];
            if (rank == 0)
                throw Error(3, $"header declares 0 dimensions; an IDX array has 1 to {MaxRank}");
            if (rank > MaxRank)
                throw Error(3, $"header declares {rank} dimensions, more than the {MaxRank} this library reads");

            Span<byte> sizeBytes = stackalloc byte[4 * MaxRank];
            sizeBytes = sizeBytes[..(4 * rank)];
            got = Fill(sizeBytes);
            if (got < sizeBytes.Length)
                throw Error(4 + got, $"truncated header: {rank} dimensions need {sizeBytes.Length} bytes of sizes but the {What} ends after {got}");
            var sizes = new uint[rank];
            long rowElements = 1;
            for (int i = 0; i < rank; i++)
            {
                long offset = 4 + 4L * i;
                sizes[i] = BinaryPrimitives.ReadUInt32BigEndian(sizeBytes[(4 * i)..]);
                if (sizes[i] == 0)
                    throw Error(offset, $"dimension {i} has size 0; every IDX size must be positive");
                if (i == 0 && sizes[i] > int.MaxValue)
                    throw Error(offset, $"header declares {sizes[i]} rows, more than the {int.MaxValue} this library holds (or a corrupt header)");
                if (i > 0)
                {
                    rowElements *= sizes[i];
                    if (rowElements > FormatLimits.MaxDimension)
                        throw Error(offset, $"rows of {string.Join(" × ", sizes[1..(i + 1)])} values exceed the supported maximum dim {FormatLimits.MaxDimension}");
                }
            }

            var header = new IdxHeader(type, sizes, Compressed, _file.Length);
            if (!Compressed)
            {
                long available = header.FileLength - header.DataOffset;
                if (header.DataBytes > available)
                    throw Error(header.FileLength,
                        $"truncated: the file ends inside row {available / header.RowBytes}; the header declares {header.Shape} ({header.DataBytes} bytes of values) but only {available} bytes follow the header");
                if (header.DataBytes < available)
                    throw Error(header.DataOffset + header.DataBytes,
                        $"{available - header.DataBytes} unexpected bytes after the {header.Shape} values the header declares");
            }
            return header;
        }

        /// <summary>Reads until <paramref name="dst"/> is full or the stream ends; returns the bytes read.</summary>
        private int Fill(Span<byte> dst)
        {
            int total = 0;
            try
            {
                while (total < dst.Length)
                {
                    int n = _stream.Read(dst[total..]);
                    if (n == 0) break;
                    total += n;
                }
            }
            catch (InvalidDataException ex)
            {
                throw Error(-1, $"corrupt gzip data after {_position + total} decompressed bytes: {ex.Message}", ex);
            }
            _position += total;
            return total;
        }

        public void Dispose()
        {
            _stream.Dispose();
            _file.Dispose();
        }
    }
}

/// <summary>
/// Streams an IDX file through an <see cref="AtomicFile"/>, gzip-compressed when the name ends in .gz. Values
/// the reader would reject or that the element type cannot hold are refused with <see cref="ArgumentException"/>.
/// </summary>
internal sealed class IdxWriter : IDisposable
{
    private readonly AtomicFile _file;
    private readonly Stream _stream;
    private readonly DatasetElementType _type;
    private readonly long _total;
    private readonly int _dim;
    private long _written;
    private byte[]? _scratch;

    /// <param name="path">Target file.</param>
    /// <param name="type">uint8, int32 or float32.</param>
    /// <param name="sizes">The IDX sizes, first = rows; all positive.</param>
    public IdxWriter(string path, DatasetElementType type, ReadOnlySpan<int> sizes)
    {
        FormatLimits.CheckLittleEndianHost();
        IdxFormat.TypeCode(type);
        if (sizes.Length is 0 or > IdxFormat.MaxRank)
            throw new ArgumentException($"An IDX array has 1 to {IdxFormat.MaxRank} dimensions, not {sizes.Length}.", nameof(sizes));
        long dim = 1;
        for (int i = 0; i < sizes.Length; i++)
        {
            if (sizes[i] <= 0)
                throw new ArgumentException($"IDX sizes must be positive, but dimension {i} is {sizes[i]} (an IDX file cannot hold 0 rows).", nameof(sizes));
            if (i > 0) dim *= sizes[i];
        }
        if (dim > FormatLimits.MaxDimension)
            throw new ArgumentException($"Rows of {dim} values exceed the supported maximum dim {FormatLimits.MaxDimension}.", nameof(sizes));
        _type = type;
        _dim = (int)dim;
        _total = (long)sizes[0] * dim;
        var header = new byte[4 + 4 * sizes.Length];
        header[2] = IdxFormat.TypeCode(type);
        header[3] = (byte)sizes.Length;
        for (int i = 0; i < sizes.Length; i++)
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4 + 4 * i), (uint)sizes[i]);
        _file = new AtomicFile(path);
        try
        {
            _stream = IdxFormat.IsCompressed(path)
                ? new GZipStream(_file.Stream, CompressionLevel.Optimal, leaveOpen: true)
                : _file.Stream;
            _stream.Write(header);
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>Appends float values (uint8: integers 0..255; float32: finite).</summary>
    public void WriteFloats(ReadOnlySpan<float> values)
    {
        if (_type == DatasetElementType.Int32)
            throw new InvalidOperationException("This writer stores int32 values, not floats.");
        CheckRoom(values.Length);
        _scratch ??= new byte[FormatLimits.ChunkElements * _type.Size()];
        for (int start = 0; start < values.Length; start += FormatLimits.ChunkElements)
        {
            var chunk = values.Slice(start, Math.Min(FormatLimits.ChunkElements, values.Length - start));
            long first = _written + start;
            if (_type == DatasetElementType.UInt8)
            {
                var bytes = _scratch.AsSpan(0, chunk.Length);
                for (int i = 0; i < chunk.Length; i++)
                {
                    float v = chunk[i];
                    if (!(v >= 0 && v <= 255 && v == MathF.Floor(v)))
                        throw Invalid(first + i, v.ToString(System.Globalization.CultureInfo.InvariantCulture), "is not an integer in 0..255, so it cannot be stored as uint8", "rows");
                    bytes[i] = (byte)v;
                }
                _stream.Write(bytes);
            }
            else
            {
                int bad = MatrixReader.FirstNonFinite(chunk);
                if (bad >= 0)
                    throw Invalid(first + bad, MatrixReader.Describe(chunk[bad]), "is not finite; only finite values can be written", "rows");
                var ints = MemoryMarshal.Cast<byte, int>(_scratch.AsSpan(0, chunk.Length * 4));
                BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<float, int>(chunk), ints);
                _stream.Write(_scratch, 0, chunk.Length * 4);
            }
        }
        _written += values.Length;
    }

    /// <summary>Appends integer values (uint8: 0..255; int32: any).</summary>
    public void WriteInts(ReadOnlySpan<int> values)
    {
        if (_type == DatasetElementType.Float32)
            throw new InvalidOperationException("This writer stores float32 values, not integers.");
        CheckRoom(values.Length);
        _scratch ??= new byte[FormatLimits.ChunkElements * _type.Size()];
        for (int start = 0; start < values.Length; start += FormatLimits.ChunkElements)
        {
            var chunk = values.Slice(start, Math.Min(FormatLimits.ChunkElements, values.Length - start));
            if (_type == DatasetElementType.UInt8)
            {
                var bytes = _scratch.AsSpan(0, chunk.Length);
                for (int i = 0; i < chunk.Length; i++)
                {
                    int v = chunk[i];
                    if ((uint)v > 255)
                        throw Invalid(_written + start + i, v.ToString(System.Globalization.CultureInfo.InvariantCulture), "is outside 0..255, so it cannot be stored as uint8", "values");
                    bytes[i] = (byte)v;
                }
                _stream.Write(bytes);
            }
            else
            {
                BinaryPrimitives.ReverseEndianness(chunk, MemoryMarshal.Cast<byte, int>(_scratch.AsSpan(0, chunk.Length * 4)));
                _stream.Write(_scratch, 0, chunk.Length * 4);
            }
        }
        _written += values.Length;
    }

    /// <summary>Finishes the gzip stream and publishes the file; every declared value must have been written.</summary>
    public void Commit()
    {
        if (_written != _total)
            throw new InvalidOperationException($"Declared {_total} values but wrote {_written}.");
        if (!ReferenceEquals(_stream, _file.Stream))
            _stream.Dispose(); // writes the gzip trailer; the file stream stays open
        _file.Commit();
    }

    public void Dispose()
    {
        if (!ReferenceEquals(_stream, _file.Stream))
        {
            try
            {
                _stream.Dispose();
            }
            catch (IOException)
            {
                // The temporary file is deleted next; the original exception is the one worth reporting.
            }
        }
        _file.Dispose();
    }

    private void CheckRoom(int count)
    {
        if (_written + count > _total)
            throw new InvalidOperationException($"Writing {count} more values would exceed the {_total} declared.");
    }

    private ArgumentException Invalid(long index, string value, string problem, string paramName) =>
        new($"Row {index / _dim} column {index % _dim} value {value} {problem}.", paramName);
}
