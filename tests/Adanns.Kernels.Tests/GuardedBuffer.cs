using System.Runtime.InteropServices;

namespace Adanns.Kernels.Tests;

/// <summary>
/// Floats placed so the last one ends exactly at an inaccessible (PROT_NONE) page: a kernel that reads even one
/// element past its span crashes the test instead of silently reading garbage. Linux only; elsewhere it falls
/// back to an ordinary array (the test still checks values).
/// </summary>
internal sealed unsafe class GuardedBuffer : IDisposable
{
    private const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
    private readonly nint _mapping;
    private readonly nuint _mappingBytes;
    private readonly float[]? _fallback;
    private readonly float* _start;

    public GuardedBuffer(int length)
    {
        Length = length;
        if (!OperatingSystem.IsLinux())
        {
            _fallback = new float[length];
            return;
        }
        nuint page = (nuint)Environment.SystemPageSize;
        nuint dataBytes = (nuint)length * sizeof(float);
        nuint dataPages = (dataBytes + page - 1) / page;
        _mappingBytes = (dataPages + 1) * page;
        _mapping = mmap(0, _mappingBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (_mapping == -1) throw new InvalidOperationException("mmap failed");
        nint guard = _mapping + (nint)(dataPages * page);
        if (mprotect(guard, page, PROT_NONE) != 0) throw new InvalidOperationException("mprotect failed");
        _start = (float*)(guard - (nint)dataBytes);
    }

    public int Length { get; }

    public Span<float> Span => _fallback is not null ? _fallback : new Span<float>(_start, Length);

    public void Dispose()
    {
        if (_mapping != 0) munmap(_mapping, _mappingBytes);
    }

    [DllImport("libc", SetLastError = true)] private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] private static extern int mprotect(nint addr, nuint len, int prot);
    [DllImport("libc", SetLastError = true)] private static extern int munmap(nint addr, nuint length);
}
