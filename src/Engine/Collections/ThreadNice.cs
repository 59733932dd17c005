using System.Runtime.InteropServices;

namespace Adanns.Engine.Collections;

/// <summary>
/// Lowers the scheduling priority of the calling thread (Linux nice value; elsewhere nothing). .NET's
/// <see cref="Thread.Priority"/> does not change a thread's scheduling on Linux, so a CPU-bound maintenance thread (a
/// training's k-means and encoding) competed as an equal with the threads acknowledgements and searches run on.
/// </summary>
internal static partial class ThreadNice
{
    private const int PrioProcess = 0; // with a thread id: that thread only (Linux threads are tasks)

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, int who, int prio);

    [LibraryImport("libc")]
    private static partial int gettid();

    /// <summary>Sets the calling thread's nice value to <paramref name="nice"/> (1–19; 0 or less: unchanged). Returns whether it was set.</summary>
    public static bool Lower(int nice)
    {
        if (nice <= 0 || !OperatingSystem.IsLinux()) return false;
        try
        {
            return setpriority(PrioProcess, gettid(), Math.Min(nice, 19)) == 0;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false; // a libc without gettid (glibc < 2.30): the thread keeps its priority
        }
    }

    /// <summary>The calling thread's nice value (Linux, from /proc/thread-self/stat), or null elsewhere.</summary>
    public static int? Current()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/proc/thread-self/stat")) return null;
        string stat = File.ReadAllText("/proc/thread-self/stat");
        // Fields after the command name (in parentheses, which may hold spaces): state is field 3, nice field 19.
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(rest[19 - 3], System.Globalization.CultureInfo.InvariantCulture);
    }
}
