using System.Collections.ObjectModel;
using Adanns.Engine.Storage;

namespace Adanns.Engine.Tests;

/// <summary>The payload encoding on the write path: no per-record garbage, the same bytes whatever dictionary type holds the payload.</summary>
public class PayloadCodecTests
{
    private static Dictionary<string, PayloadValue> Payload() => new(StringComparer.Ordinal)
    {
        ["g"] = 7,
        ["lang"] = "en",
        ["score"] = 0.25,
        ["tags"] = new PayloadValue[] { "a", "b" },
    };

    [Fact]
    public void EncodingADictionaryPayloadAllocatesNothing()
    {
        // Every upsert copies its payload into a Dictionary, then encodes it ~5 times (validation, the log entry, the
        // record): through IReadOnlyDictionary each pass boxed an enumerator (56 bytes).
        var payload = Payload();
        var buf = new byte[256];
        int written = 0;
        long allocated = Allocations.LeastOfThreeRounds(() =>
        {
            for (int i = 0; i < 100; i++)
                written = PayloadCodec.Write(payload, buf) + PayloadCodec.EncodedLength(payload, 0);
        });
        Assert.Equal(0, allocated);
        Assert.Equal(2 * PayloadCodec.EncodedLength(payload, 0), written);
    }

    [Fact]
    public void DictionaryAndInterfacePathsEncodeTheSameBytesAndRoundTrip()
    {
        var payload = Payload();
        IReadOnlyDictionary<string, PayloadValue> wrapped = new ReadOnlyDictionary<string, PayloadValue>(payload); // not a Dictionary: the interface path
        int n = PayloadCodec.EncodedLength(payload, 0);
        Assert.Equal(n, PayloadCodec.EncodedLength(wrapped, 0));
        var a = new byte[n];
        var b = new byte[n];
        Assert.Equal(n, PayloadCodec.Write(payload, a));
        Assert.Equal(n, PayloadCodec.Write(wrapped, b));
        Assert.Equal(a, b);
        var r = new ByteReader(a, "payload");
        var back = PayloadCodec.Read(ref r, n)!;
        Assert.Equal(payload.Keys.Order(StringComparer.Ordinal), back.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, v) in payload) Assert.Equal(v.ToString(), back[k].ToString());
    }

    [Fact]
    public void ABadFieldNameIsStillRejectedOnTheDictionaryPath()
    {
        var payload = new Dictionary<string, PayloadValue> { [""] = 1 };
        var e = Assert.Throws<AdannsException>(() => PayloadCodec.EncodedLength(payload, 3));
        Assert.Contains("Record 3: payload field names must be 1–255 UTF-8 bytes", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>The write-ahead log entry encoded into a pooled buffer is the same entry, and decodes back.</summary>
public class WriteBatchEncodingTests
{
    [Fact]
    public void RentedEncodingEqualsTheFreshOne_AndRoundTrips()
    {
        const int D = 4, N = 3;
        var batch = new Adanns.Engine.Collections.WriteBatch
        {
            Op = Adanns.Engine.Collections.WalOp.Upsert, FirstLsn = 41, Dimension = D,
            Ids = [(RecordId)1UL, (RecordId)"two", (RecordId)3UL],
            Vectors = Enumerable.Range(0, N * D).Select(i => i * 0.5f).ToArray(),
            Payloads = [new Dictionary<string, PayloadValue> { ["g"] = 1 }, null, new Dictionary<string, PayloadValue> { ["s"] = "x" }],
        };
        var fresh = batch.Encode();
        var rented = batch.EncodeRented(out int length);
        try
        {
            Assert.Equal(fresh.Length, length);
            Assert.Equal(fresh, rented.AsSpan(0, length).ToArray());
            Adanns.Engine.Collections.WriteBatch.PatchLsn(rented.AsSpan(0, length), 77);
            var back = Adanns.Engine.Collections.WriteBatch.Decode(rented.AsSpan(0, length).ToArray(), D, "test entry");
            Assert.Equal(77, back.FirstLsn);
            Assert.Equal(batch.Ids, back.Ids);
            Assert.Equal(batch.Vectors, back.Vectors);
            Assert.Equal("\"x\"", back.Payloads[2]!["s"].ToString());
            Assert.Null(back.Payloads[1]);
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
    }
}
