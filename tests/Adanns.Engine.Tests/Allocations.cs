namespace Adanns.Engine.Tests;

/// <summary>Measures what a warm hot path allocates.</summary>
internal static class Allocations
{
    /// <summary>
    /// Bytes allocated on this thread by <paramref name="round"/>, the least of three rounds: a per-call allocation
    /// shows in every round; a one-off from the runtime (tiered JIT promoting a method mid-round) does not.
    /// </summary>
    public static long LeastOfThreeRounds(Action round)
    {
        long least = long.MaxValue;
        for (int r = 0; r < 3; r++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            round();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }
}
