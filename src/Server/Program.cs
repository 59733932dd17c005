namespace Adanns.Server;

internal static class Program
{
    public static async Task Main(string[] args)
    {
        var app = ServerHost.Build(args);
        await app.RunAsync().ConfigureAwait(false);
    }
}
