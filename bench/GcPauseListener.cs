using System.Diagnostics;
using System.Diagnostics.Tracing;

namespace Adanns.Bench;

/// <summary>
/// Records every GC's stop-the-world pause (the runtime's GCSuspendEEBegin → GCRestartEEEnd events) on a bench
/// clock, with the generation collected, so slow writes can be set beside the pauses that overlapped them.
/// </summary>
internal sealed class GcPauseListener : EventListener
{
    private readonly Stopwatch _clock;
    private readonly DateTime _clockStartUtc;
    private readonly List<(double Start, double End, int Gen)> _pauses = [];
    private readonly List<(double Ms, int Nice)> _byNice = []; // the pause and the nice value of the thread that ran the GC (Linux)
    private int _suspendNice = int.MinValue;
    private readonly List<string> _gen2 = [];
    private readonly Dictionary<string, long> _allocations = [];
    private double _suspendedAt = -1;
    private int _gen = -1;

    public GcPauseListener(Stopwatch clock)
    {
        _clock = clock;
        _clockStartUtc = DateTime.UtcNow - clock.Elapsed;
    }

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword; Verbose adds the allocation ticks (one per ~100 KB allocated, with a type)
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        double at = (e.TimeStamp.ToUniversalTime() - _clockStartUtc).TotalSeconds;
        switch (e.EventName)
        {
            case "GCAllocationTick_V4" or "GCAllocationTick_V3" or "GCAllocationTick_V2":
                int ti = e.PayloadNames?.IndexOf("TypeName") ?? -1;
                int ai = e.PayloadNames?.IndexOf("AllocationAmount64") ?? -1;
                if (ti >= 0)
                {
                    string type = Convert.ToString(e.Payload![ti], System.Globalization.CultureInfo.InvariantCulture) ?? "?";
                    long amount = ai >= 0 ? Convert.ToInt64(e.Payload![ai], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
                    lock (_allocations) _allocations[type] = _allocations.GetValueOrDefault(type) + amount;
                }
                break;
            case "GCStart_V2" or "GCStart_V1" or "GCStart":
                int i = e.PayloadNames?.IndexOf("Depth") ?? -1;
                if (i >= 0) _gen = Convert.ToInt32(e.Payload![i], System.Globalization.CultureInfo.InvariantCulture);
                if (_gen == 2)
                {
                    // Reason (4 = large-object allocations, 0 = small, 6 = LOH out of space, 1 = induced) and type
                    // (0 = blocking, 1 = background, 2 = blocking during a background one).
                    string Field(string name) => e.PayloadNames!.IndexOf(name) is int j and >= 0 ? Convert.ToString(e.Payload![j], System.Globalization.CultureInfo.InvariantCulture) ?? "?" : "?";
                    lock (_pauses) _gen2.Add($"reason {Field("Reason")} type {Field("Type")}");
                }
                break;
            case "GCSuspendEEBegin_V1" or "GCSuspendEEBegin":
                _suspendedAt = at;
                _suspendNice = NiceOf(e.OSThreadId);
                break;
            case "GCRestartEEEnd_V1" or "GCRestartEEEnd":
                if (_suspendedAt >= 0) lock (_pauses)
                {
                    _pauses.Add((_suspendedAt, at, _gen));
                    _byNice.Add(((at - _suspendedAt) * 1000, _suspendNice));
                }
                _suspendedAt = -1;
                _gen = -1;
                break;
        }
    }

    public List<(double Start, double End, int Gen)> Pauses()
    {
        lock (_pauses) return [.. _pauses];
    }

    /// <summary>The nice value of an OS thread of this process (field 19 of /proc/self/task/TID/stat), or int.MinValue.</summary>
    private static int NiceOf(long tid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[16], System.Globalization.CultureInfo.InvariantCulture); // field 19 overall: the 17th after the name
        }
        catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return int.MinValue;
        }
    }

    /// <summary>Pauses by the nice value of the thread that ran the collection: count, total and max ms.</summary>
    public string PausesByNice()
    {
        lock (_pauses)
            return string.Join(", ", _byNice.GroupBy(p => p.Nice).OrderBy(g => g.Key).Select(g =>
                $"nice {(g.Key == int.MinValue ? "?" : g.Key.ToString(System.Globalization.CultureInfo.InvariantCulture))}: {g.Count()} pauses, {g.Sum(p => p.Ms):F0} ms, max {g.Max(p => p.Ms):F1} ms"));
    }

    /// <summary>The types allocated most (sampled: the runtime reports the type of the allocation that crossed each ~100 KB), with their share.</summary>
    public string TopAllocations(int n)
    {
        lock (_allocations)
        {
            double total = Math.Max(1, _allocations.Values.Sum());
            return string.Join(", ", _allocations.OrderByDescending(a => a.Value).Take(n).Select(a => $"{a.Key} {a.Value / total:P0}"));
        }
    }

    /// <summary>Gen-2 collections by reason and type (counts).</summary>
    public string Gen2Summary()
    {
        lock (_pauses) return string.Join(", ", _gen2.GroupBy(g => g).OrderByDescending(g => g.Count()).Select(g => $"{g.Key}: {g.Count()}"));
    }

    /// <summary>Milliseconds of pauses inside [from, to] (bench clock, seconds).</summary>
    public double PausedWithin(double from, double to)
    {
        double ms = 0;
        foreach (var (s, e, _) in Pauses())
            ms += Math.Max(0, Math.Min(e, to) - Math.Max(s, from)) * 1000;
        return ms;
    }
}
