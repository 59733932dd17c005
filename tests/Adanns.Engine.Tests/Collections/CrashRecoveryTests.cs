using System.Diagnostics;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// SIGKILL fault test: a child process writes (4 concurrent writers, batches of 4, some deletes) and journals every
/// acknowledgement; it is killed at a random moment; the verifier reopens the database and checks that every
/// acknowledged write survived, no batch is half-applied, no record appears that was never written, and every
/// vector and payload is exact. bench/scripts/kill-stress.sh runs the same with 8 writers for 20 cycles.
/// </summary>
public class CrashRecoveryTests : CollectionTestBase
{
    [Fact]
    public async Task AcknowledgedWritesSurviveKill9()
    {
        string writer = WriterDll();
        string db = Path.Combine(Dir, "db");
        string journal = Path.Combine(Dir, "journal.txt");
        var rng = new Random(7);
        for (int cycle = 1; cycle <= 3; cycle++)
        {
            using (var p = Start(writer, $"write {db} {journal} 4 {cycle}"))
            {
                // Wait until it has opened the database, then let it write for a random while.
                string? ready = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
                if (ready != "ready") p.Kill(); // a failed start must not leave the writer running
                Assert.True(ready == "ready", $"cycle {cycle}: the writer did not start ({ready})");
                await Task.Delay(rng.Next(300, 1200));
                p.Kill(); // SIGKILL on Linux
                Assert.True(p.WaitForExit(30_000), $"cycle {cycle}: the writer did not die");
            }
            using var v = Start(writer, $"verify {db} {journal}");
            var stdout = v.StandardOutput.ReadToEndAsync();
            var stderr = v.StandardError.ReadToEndAsync();
            Assert.True(v.WaitForExit(60_000), $"cycle {cycle}: the verifier hung");
            string output = await stdout + await stderr;
            Assert.True(v.ExitCode == 0, $"cycle {cycle}: {output}");
            // Each cycle acknowledged something, so the check had teeth.
            Assert.Matches(@"^OK batches tried=\d+ acked=[1-9]", output);
        }
    }

    internal static Process Start(string dll, string args)
    {
        var psi = new ProcessStartInfo("dotnet", $"\"{dll}\" {args}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var p = Process.Start(psi)!;
        return p;
    }

    internal static string WriterDll()
    {
        // Same configuration as this test assembly (bin/<Configuration>/<tfm>/).
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string tfm = baseDir.Name, configuration = baseDir.Parent!.Name;
        string dll = Path.Combine(ReadmeExampleTests.FindRepoRoot(), "tests", "Adanns.Storage.Writer", "bin", configuration, tfm, "Adanns.Storage.Writer.dll");
        Assert.True(File.Exists(dll), $"writer not built: {dll}");
        return dll;
    }
}
