using Adanns.Protocol.V1;
using static Adanns.Server.Tests.Helpers;

namespace Adanns.Server.Tests;

[Collection(ServerCollection.Name)]
public sealed class SearchBatchTests(ServerFixture server)
{
    [Fact]
    public async Task BatchAnswersLikeSingleSearchesInRequestOrderWithVectors()
    {
        var c = server.Client;
        var queries = Vectors(12, 32, seed: 21);
        var requests = new List<SearchRequest>();
        for (int i = 0; i < queries.Length; i++)
        {
            var r = new SearchRequest { Collection = "demo", TopK = (uint)(i % 3 == 0 ? 5 : 10), Vector = { queries[i] }, WithVectors = i % 2 == 0, WithPayload = true };
            if (i % 4 == 1) r.Filter = new Filter { Equals_ = new FieldEquals { Field = "parity", Value = new Value { StringValue = "even" } } };
            requests.Add(r);
        }
        var batch = await c.SearchBatchAsync("demo", requests);
        Assert.Equal(requests.Count, batch.Results.Count);
        for (int i = 0; i < requests.Count; i++)
        {
            var single = await c.SearchAsync(requests[i]);
            var got = batch.Results[i];
            Assert.Equal(single.Points.Select(p => p.Id.Num), got.Points.Select(p => p.Id.Num));
            Assert.Equal(single.Points.Select(p => p.Score), got.Points.Select(p => p.Score));
            foreach (var p in got.Points)
            {
                Assert.Equal(requests[i].WithVectors ? 32 : 0, p.Vector.Count);
                if (requests[i].Filter is not null) Assert.Equal("even", p.Payload["parity"].StringValue);
            }
            if (requests[i].WithVectors)
            {
                // The vector is the stored one.
                var stored = await c.GetAsync("demo", [got.Points[0].Id], withVectors: true);
                Assert.Equal(stored[0].Vector, got.Points[0].Vector);
            }
        }
    }
}
