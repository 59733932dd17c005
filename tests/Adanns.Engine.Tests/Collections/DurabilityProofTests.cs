using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Adanns.Engine.Tests.Collections;

/// <summary>A fact that needs strace able to trace a child process (Linux): skipped, with the reason, elsewhere.</summary>
public sealed class StraceFactAttribute : FactAttribute
{
    public StraceFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "strace is Linux-only.";
        else if (!DurabilityProofTests.StraceWorks()) Skip = "strace is not installed or may not trace here (ptrace not permitted); .ci/run installs it.";
    }
}

/// <summary>
/// The durability claim, shown at the system-call level: a child process upserts records one at a time and, after
/// each acknowledgement, appends "ACK mark-N" to a file with one write(). Under <c>strace -f</c> every ACK must come
/// after (1) a completed write of the log page holding that record's bytes to a write-ahead-log segment that is
/// durable on return (opened O_SYNC / O_DSYNC) or was fsync'ed / fdatasync'ed since, and (2) after that, a completed
/// durable write of FASTER's commit record (the log's committed-until address, which recovery trusts).
/// </summary>
/// <remarks>
/// What FASTER 2.6.5's log device does on Linux (observed in this trace): <c>Devices.CreateLogDevice</c> opens each
/// segment file (<c>wal/wal.log.N</c>) and each commit file (<c>wal/log-commits/commit.K.0</c>) with
/// <c>O_SYNC</c> and writes with <c>pwrite64</c>; it calls no fsync — O_SYNC makes each write durable (data and file
/// metadata) before it returns. It does not fsync the directory after creating a file.
/// </remarks>
public class DurabilityProofTests : CollectionTestBase
{
    private const int Count = 40;

    internal static bool StraceWorks()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("strace", "-f -o /dev/null true") { RedirectStandardError = true, RedirectStandardOutput = true });
            if (p is null) return false;
            p.WaitForExit(10_000);
            return p.HasExited && p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    [StraceFact]
    public async Task EveryAcknowledgementFollowsADurableWriteOfItsLogPageAndTheCommitRecord()
    {
        string writer = CrashRecoveryTests.WriterDll();
        string trace = Path.Combine(Dir, "trace.txt"), acks = Path.Combine(Dir, "acks.txt");
        var psi = new ProcessStartInfo("strace",
            $"-f -s 65536 -e trace=openat,write,pwrite64,pwritev,pwritev2,fsync,fdatasync -o \"{trace}\" dotnet \"{writer}\" acks \"{Path.Combine(Dir, "db")}\" \"{acks}\" {Count}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using (var p = Process.Start(psi)!)
        {
            var err = p.StandardError.ReadToEndAsync();
            Assert.True(p.WaitForExit(120_000), "the traced writer hung");
            Assert.True(p.ExitCode == 0, await err);
        }
        Assert.Equal(Count, File.ReadAllLines(acks).Length);

        var events = Parse(File.ReadAllLines(trace));
        var wal = events.Where(e => e.Kind == Kind.DurableWrite && e.Path.Contains("/wal/wal.log.", StringComparison.Ordinal)).ToList();
        var commits = events.Where(e => e.Kind == Kind.DurableWrite && e.Path.Contains("/wal/log-commits/", StringComparison.Ordinal)).ToList();
        var ackEvents = events.Where(e => e.Kind == Kind.Ack).ToList();
        Assert.Equal(Count, ackEvents.Count);
        for (int i = 0; i < Count; i++)
        {
            string mark = $"mark-{i:D6}";
            var ack = ackEvents.Single(a => a.Content.Contains(mark, StringComparison.Ordinal));
            var page = wal.LastOrDefault(w => w.Position < ack.Position && w.Content.Contains(mark, StringComparison.Ordinal));
            Assert.True(page is not null, $"{mark}: acknowledged before any durable log write held it ({wal.Count} durable log writes, {commits.Count} commit writes traced)");
            Assert.True(commits.Any(c => c.Position > page!.Position && c.Position < ack.Position),
                $"{mark}: acknowledged before a durable commit record followed its log write");
        }
    }

    private enum Kind { DurableWrite, Ack }

    private sealed record Event(Kind Kind, int Position, string Path, string Content);

    private static readonly Regex Open = new(@"^openat\(AT_FDCWD, ""([^""]+)"", ([A-Z_|]+)(?:, \d+)?\)\s+=\s+(\d+)$", RegexOptions.Compiled);
    private static readonly Regex Write = new(@"^(?:write|pwrite64|pwritev2?)\((\d+), (.*)\)\s+=\s+(\d+)$", RegexOptions.Compiled | RegexOptions.Singleline);
    private static readonly Regex Sync = new(@"^f(?:data)?sync\((\d+)\)\s+=\s+0$", RegexOptions.Compiled);

    /// <summary>
    /// Completed calls (strace pads the "= result" column) in the order they completed (an "unfinished" call is joined with its "resumed" line and placed
    /// there), except ACK writes, which are placed where they started: the acknowledgement happened before that.
    /// </summary>
    private static List<Event> Parse(string[] lines)
    {
        var partial = new Dictionary<string, (string Text, int Start)>();
        var fds = new Dictionary<int, (string Path, bool Sync)>();
        var unsynced = new Dictionary<int, List<string>>();
        var events = new List<Event>();
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n];
            int sp = line.IndexOf(' ', StringComparison.Ordinal);
            if (sp < 0) continue;
            string pid = line[..sp], call = line[(sp + 1)..].TrimStart();
            int start = n;
            if (call.EndsWith("<unfinished ...>", StringComparison.Ordinal))
            {
                partial[pid] = (call[..^"<unfinished ...>".Length].TrimEnd(), n);
                continue;
            }
            var resumed = Regex.Match(call, @"^<\.\.\. \w+ resumed>(.*)$", RegexOptions.Singleline);
            if (resumed.Success && partial.Remove(pid, out var head))
            {
                call = head.Text + resumed.Groups[1].Value;
                start = head.Start;
            }
            if (Open.Match(call) is { Success: true } o)
            {
                fds[int.Parse(o.Groups[3].Value)] = (o.Groups[1].Value, o.Groups[2].Value.Contains("O_SYNC") || o.Groups[2].Value.Contains("O_DSYNC"));
                unsynced.Remove(int.Parse(o.Groups[3].Value));
            }
            else if (Write.Match(call) is { Success: true } w)
            {
                int fd = int.Parse(w.Groups[1].Value);
                string content = w.Groups[2].Value;
                if (!fds.TryGetValue(fd, out var f)) continue;
                if (f.Path.EndsWith("/acks.txt", StringComparison.Ordinal)) events.Add(new Event(Kind.Ack, start, f.Path, content));
                else if (f.Sync) events.Add(new Event(Kind.DurableWrite, n, f.Path, content));
                else (unsynced.TryGetValue(fd, out var l) ? l : unsynced[fd] = []).Add(content);
            }
            else if (Sync.Match(call) is { Success: true } s)
            {
                int fd = int.Parse(s.Groups[1].Value);
                if (fds.TryGetValue(fd, out var f) && unsynced.Remove(fd, out var pending))
                    foreach (var content in pending) events.Add(new Event(Kind.DurableWrite, n, f.Path, content));
            }
        }
        return events;
    }
}
