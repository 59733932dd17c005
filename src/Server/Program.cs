namespace Adanns.Server;

internal static class Program
{
    public static async Task Main(string[] args)
    {
        // No blocking full collections while the process runs (they still happen under memory pressure): under steady
        // ingest a blocking gen-2 collection was the slowest acknowledged write (126–252 ms pauses), while background
        // ones pause for a few ms (issue 20, bench/RESULTS.md "Acknowledged-write latency: where the slowest writes' time went").
        System.Runtime.GCSettings.LatencyMode = System.Runtime.GCLatencyMode.SustainedLowLatency;
        var app = ServerHost.Build(args);
        await app.RunAsync().ConfigureAwait(false);
    }
}
