namespace Adanns.Engine.IO;

/// <summary>
/// A file written under a temporary name in the target directory and renamed over the target only on
/// <see cref="Commit"/>, so a crash or exception never leaves a half-written file under the final name.
/// Disposing without committing deletes the temporary file.
/// </summary>
internal sealed class AtomicFile : IDisposable
{
    private readonly string _tempPath;
    private bool _committed;

    public AtomicFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        TargetPath = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(TargetPath) ?? ".";
        // Same directory: the rename stays on one file system, which is what makes it atomic.
        _tempPath = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(TargetPath)}.{Guid.NewGuid():N}.tmp");
        // ReadWrite because the HDF5 writer seeks back and reads what it wrote.
        Stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
    }

    /// <summary>Full path of the final file.</summary>
    public string TargetPath { get; }

    /// <summary>The stream on the temporary file.</summary>
    public FileStream Stream { get; }

    /// <summary>Flushes to disk and renames the temporary file over the target.</summary>
    public void Commit()
    {
        Stream.Flush(flushToDisk: true);
        Stream.Dispose();
        File.Move(_tempPath, TargetPath, overwrite: true);
        _committed = true;
    }

    public void Dispose()
    {
        if (_committed) return;
        Stream.Dispose();
        try
        {
            File.Delete(_tempPath);
        }
        catch (IOException)
        {
            // Best effort: the original exception is the one worth reporting.
        }
        catch (UnauthorizedAccessException)
        {
            // Same as above.
        }
    }
}
