using Adanns.Engine.Collections;

namespace Adanns.Engine.Tests.Collections;

/// <summary>
/// Trainings run at a lower scheduling priority (Linux nice, <see cref="DatabaseOptions.BackgroundThreadNice"/>), so
/// their CPU-bound work yields to the threads acknowledgements and searches run on (issue 20).
/// </summary>
public class TrainingPriorityTests : CollectionTestBase
{
    [LinuxTheory]
    [InlineData(10)]
    [InlineData(0)]
    public async Task TrainingsRunAtTheConfiguredNice(int nice)
    {
        int? mine = ThreadNice.Current();
        Assert.NotNull(mine);
        const int D = 16;
        var data = Vectors(1200, D, 61);
        using var db = AdannsDatabase.Open(Dir, QuietOptions with { BackgroundMaintenance = false, BackgroundThreadNice = nice });
        var c = db.CreateCollection(new CollectionConfig("nice", D, Metric.L2, "IVF8") { TrainThreshold = 1000 });
        await c.UpsertAsync(Enumerable.Range(0, 1200).Select(i => new VectorRecord((ulong)i, data[i])).ToList());
        Assert.True(await c.WaitForIndexAsync());
        // A thread's nice can only go up without privileges: 10 unless the process already runs nicer than that.
        Assert.Equal(nice == 0 ? mine : Math.Max(nice, mine.Value), c.TrainingThreadNice);
        Assert.Equal(mine, ThreadNice.Current()); // the caller's thread is untouched
    }
}

/// <summary>A theory that runs on Linux only (nice values); skipped, with the reason, elsewhere.</summary>
public sealed class LinuxTheoryAttribute : TheoryAttribute
{
    public LinuxTheoryAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "Thread nice values are Linux-only.";
    }
}
