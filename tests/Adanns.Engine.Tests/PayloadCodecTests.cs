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
