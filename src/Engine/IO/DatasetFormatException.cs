namespace Adanns.Engine.IO;

/// <summary>
/// A dataset file is malformed: a header or length read from disk is out of range, rows disagree, the file is
/// truncated, or the data holds values this library refuses (NaN, ±Inf). The message names the file, the byte
/// offset of the problem (when one applies) and what was wrong.
/// </summary>
public sealed class DatasetFormatException : FormatException
{
    /// <summary>Creates the exception for <paramref name="filePath"/> at byte <paramref name="offset"/> (-1: no single offset).</summary>
    public DatasetFormatException(string filePath, long offset, string problem, Exception? innerException = null)
        : base(Compose(filePath, offset, problem), innerException)
    {
        FilePath = filePath;
        Offset = offset < 0 ? -1 : offset;
        Problem = problem;
    }

    /// <summary>The file that was being read, as given by the caller.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset in the file where the problem is, or -1 when it has no single location (e.g. HDF5 objects).</summary>
    public long Offset { get; }

    /// <summary>The problem alone, without the file name and offset.</summary>
    public string Problem { get; }

    private static string Compose(string filePath, long offset, string problem)
    {
        // The bare file name keeps messages readable; FilePath keeps the full path for programs.
        string name = Path.GetFileName(filePath);
        if (name.Length == 0) name = filePath;
        return offset >= 0 ? $"{name} at byte {offset}: {problem}" : $"{name}: {problem}";
    }
}
