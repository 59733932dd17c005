using System.Reflection;
using Adanns.Engine;
using Adanns.Engine.Collections;
using Adanns.Server;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using static Adanns.Server.Tests.Helpers;

namespace Adanns.Server.Tests;

/// <summary>
/// Backpressure seen from a client (issue 20): with the index backlog over <c>Adanns:MaxIndexBacklogBytes</c> for longer
/// than <c>Adanns:BackpressureTimeoutSeconds</c>, an upsert answers UNAVAILABLE (retryable) with error code
/// <c>Overloaded</c> and writes nothing; once the training catches up the same upsert succeeds.
/// Runs alone (a server of its own: see <see cref="LifecycleCollection"/>).
/// </summary>
[Collection(LifecycleCollection.Name)]
public sealed class BackpressureOverGrpcTests
{
    [Fact]
    public async Task AnUpsertBehindAnOverBudgetBacklog_AnswersUnavailableOverloaded_AndSucceedsOnRetry()
    {
        string dir = Path.Combine(Path.GetTempPath(), "adanns-bp-" + Guid.NewGuid().ToString("N"));
        await using var app = ServerFixture.Build(dir, 0, 0, demo: false, extra: new Dictionary<string, string?>
        {
            ["Adanns:MaxIndexBacklogBytes"] = (1 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Adanns:BackpressureTimeoutSeconds"] = "0.3",
        });
        try
        {
            (int grpc, _) = await ServerFixture.StartAsync(app);
            using var client = new Adanns.Client.AdannsClient($"http://127.0.0.1:{grpc}", ServerFixture.ReadWriteKey);
            await ServerFixture.WaitServingAsync(client, TimeSpan.FromSeconds(60));
            var db = await app.Services.GetRequiredService<DatabaseHost>().Ready;
            const int D = 16, First = 1000, Batch = 500;
            var c = db.CreateCollection(new CollectionConfig("bp", D, Engine.Metric.L2, "IVF8") { TrainThreshold = First });
            // The engine's test seam (internal): the training is parked before it replays the writes made meanwhile.
            using var gate = new ManualResetEventSlim(false);
            typeof(Collection).GetProperty("TrainingGate", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(c, gate);
            var data = Vectors(First + 60 * Batch, D, 3);
            await client.UpsertAsync("bp", Points(data[..Batch]));
            await client.UpsertAsync("bp", Points(data[Batch..First], Batch));

            int next = First;
            RpcException? refused = null;
            while (refused is null && next + Batch <= data.Length)
            {
                try
                {
                    await client.UpsertAsync("bp", Points(data[next..(next + Batch)], (ulong)next));
                    next += Batch;
                }
                catch (RpcException e)
                {
                    refused = e;
                }
            }
            Assert.NotNull(refused);
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.Equal(nameof(AdannsErrorCode.Overloaded), refused.Trailers.GetValue(AdannsException.TrailerKey));
            Assert.Contains("retry", refused.Status.Detail, StringComparison.Ordinal);
            Assert.Equal(next, await client.CountAsync("bp")); // nothing of the refused batch

            gate.Set(); // the training replays its journal; a client retries after a pause, as the status says
            var until = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                try
                {
                    await client.UpsertAsync("bp", Points(data[next..(next + Batch)], (ulong)next));
                    break;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && DateTime.UtcNow < until)
                {
                    await Task.Delay(100);
                }
            }
            Assert.Equal(next + Batch, await client.CountAsync("bp"));
        }
        finally
        {
            await app.StopAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
