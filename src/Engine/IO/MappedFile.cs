using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace Adanns.Engine.IO;

/// <summary>
/// A read-only memory mapping of a whole file. Readers decode straight from the mapping into native
/// <see cref="VectorSet"/> memory, so a multi-gigabyte file is never copied into the managed heap and
/// per-row headers at a fixed stride can be checked without a system call each.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;

    private MappedFile(string path, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view)
    {
        Path = path;
        Length = length;
        _map = map;
        _view = view;
        if (view != null)
        {
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + view.PointerOffset;
        }
    }

    /// <summary>The path as given by the caller (used in error messages).</summary>
    public string Path { get; }

    /// <summary>File size in bytes.</summary>
    public long Length { get; }

    /// <summary>Maps <paramref name="path"/>; an empty file is represented without a mapping (mapping zero bytes is an error).</summary>
    public static MappedFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        try
        {
            long length = stream.Length;
            if (length == 0)
            {
                stream.Dispose();
                return new MappedFile(path, 0, null, null);
            }
            var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            try
            {
                var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                return new MappedFile(path, length, map, view);
            }
            catch
            {
                map.Dispose();
                throw;
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Bytes [offset, offset+count); the caller has already checked they lie inside the file.</summary>
    public ReadOnlySpan<byte> Bytes(long offset, int count)
    {
        if (offset < 0 || count < 0 || offset + count > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Bytes [{offset}, {offset + count}) are outside the {Length}-byte file.");
        ObjectDisposedException.ThrowIf(_base == null && Length > 0, this);
        return new ReadOnlySpan<byte>(_base + offset, count);
    }

    public int ReadInt32(long offset) => BinaryPrimitives.ReadInt32LittleEndian(Bytes(offset, 4));

    public uint ReadUInt32(long offset) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(offset, 4));

    public ushort ReadUInt16(long offset) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(offset, 2));

    public void Dispose()
    {
        if (_view != null && _base != null)
        {
            _base = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
