namespace Adanns.Engine.Persistence;

/// <summary>An index file that cannot be loaded: wrong magic or version, a failed checksum, a truncation, or a length out of bounds.</summary>
public sealed class IndexFileException : FormatException
{
    /// <summary>Creates the exception; the message names the file, the byte offset (when known) and the problem.</summary>
    public IndexFileException(string filePath, long offset, string problem, Exception? inner = null)
        : base(offset >= 0
            ? $"Index file {Path.GetFileName(filePath)} at byte {offset}: {problem}"
            : $"Index file {Path.GetFileName(filePath)}: {problem}", inner)
    {
        FilePath = filePath;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>The file.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset of the problem, or −1.</summary>
    public long Offset { get; }

    /// <summary>What was wrong.</summary>
    public string Problem { get; }
}
