using System.Text;
using Adanns.Engine.Indexes;
using Adanns.Engine.Persistence;

namespace Adanns.Engine.Collections;

/// <summary>
/// The small metadata files of a collection directory, both section files (magic, version, CRC per section,
/// END marker; see <see cref="SectionFile"/>) written atomically:
/// <list type="bullet">
/// <item><c>collection.meta</c>: the <see cref="CollectionConfig"/>, written once at creation.</item>
/// <item><c>manifest</c>: the last checkpoint: applied LSN, record-store checkpoint token, index snapshot file,
/// write-ahead log address to replay from; optionally (IDLT) the LSN the index snapshot was taken at and the record
/// keys removed from the index since, when the snapshot predates the checkpoint (it is written only when an index is
/// trained, off the write path).</item>
/// </list>
/// </summary>
internal static class CollectionFiles
{
    public const string MetaFile = "collection.meta";
    public const string ManifestFile = "manifest";
    private static ReadOnlySpan<byte> MetaMagic => "ADNSCOL\u001A"u8;
    private static ReadOnlySpan<byte> ManifestMagic => "ADNSMAN\u001A"u8;

    public static void WriteConfig(string dir, CollectionConfig c) =>
        SectionFile.Write(Path.Combine(dir, MetaFile), MetaMagic, 1, 0, w =>
        {
            w.Section("CONF", b =>
            {
                b.Write(c.Name);
                b.Write(c.Dimension);
                b.Write((byte)c.Metric);
                b.Write(c.IndexSpec);
                b.Write(c.TrainThreshold ?? -1);
                b.Write(c.MaxPayloadBytes);
            });
            // Optional: files without it load as "no embedder", and readers that predate it skip it.
            if (c.Embedder is { } embedder) w.Section("embd", b => b.Write(embedder));
        });

    public static CollectionConfig ReadConfig(string dir)
    {
        using var f = new SectionReader(Path.Combine(dir, MetaFile), MetaMagic, 1, 0);
        CollectionConfig? c = null;
        string? embedder = null;
        while (f.Next() is var (tag, payload, offset))
        {
            if (tag == "embd")
            {
                var e = new PayloadReader(f, tag, payload, offset);
                embedder = ReadString(ref e, f, "embedder");
                if (embedder.Length is 0 or > 64) throw f.Fail(offset, $"embedder name of {embedder.Length} characters (expected 1–64).");
                continue;
            }
            if (tag != "CONF")
            {
                f.SkipUnknown(tag, offset);
                continue;
            }
            var r = new PayloadReader(f, tag, payload, offset);
            string name = ReadString(ref r, f, "name");
            int dim = r.Int32In("dimension", 1, 1 << 16);
            byte metric = r.Byte("metric");
            if (!Enum.IsDefined((Metric)metric)) throw f.Fail(offset, $"unknown metric {metric}.");
            string spec = ReadString(ref r, f, "index spec");
            int train = r.Int32In("train threshold", -1, int.MaxValue);
            int maxPayload = r.Int32In("max payload bytes", 0, int.MaxValue);
            c = new CollectionConfig(name, dim, (Metric)metric, spec) { TrainThreshold = train < 0 ? null : train, MaxPayloadBytes = maxPayload };
        }
        return c is null ? throw f.Fail(-1, "no CONF section.") : c with { Embedder = embedder };
    }

    // BinaryWriter.Write(string) uses a 7-bit encoded length prefix.
    private static string ReadString(ref PayloadReader r, SectionReader f, string what)
    {
        int len = 0, shift = 0;
        byte b;
        do
        {
            if (shift > 28) throw f.Fail(-1, $"{what}: bad string length.");
            b = r.Byte(what + " length");
            len |= (b & 0x7F) << shift;
            shift += 7;
        } while ((b & 0x80) != 0);
        if (len > r.Remaining) throw f.Fail(-1, $"{what}: string of {len} bytes exceeds the {r.Remaining} left.");
        var bytes = new byte[len];
        for (int i = 0; i < len; i++) bytes[i] = r.Byte(what);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>The last checkpoint.</summary>
    /// <param name="AppliedLsn">Every write up to this LSN is in the record store checkpoint.</param>
    /// <param name="StoreToken">The record store's checkpoint.</param>
    /// <param name="IndexFile">The index snapshot (null: not trained).</param>
    /// <param name="ReplayFrom">Write-ahead log address recovery replays from.</param>
    /// <param name="TrainedCount">Vectors the index was trained on.</param>
    /// <param name="IndexLsn">The index snapshot holds every record live at this LSN (null: at <paramref name="AppliedLsn"/>,
    /// files before the IDLT section). Records written after it are added from the record store on recovery.</param>
    /// <param name="IndexRemoved">Record keys removed from the index since its snapshot was written (removed again on recovery).</param>
    public sealed record Manifest(long AppliedLsn, Guid StoreToken, string? IndexFile, long ReplayFrom, long TrainedCount,
        long? IndexLsn = null, long[]? IndexRemoved = null);

    public static void WriteManifest(string dir, Manifest m) =>
        SectionFile.Write(Path.Combine(dir, ManifestFile), ManifestMagic, 1, 0, w =>
        {
            w.Section("CKPT", b =>
            {
                b.Write(m.AppliedLsn);
                b.Write(m.StoreToken.ToByteArray());
                b.Write(m.IndexFile ?? "");
                b.Write(m.ReplayFrom);
                b.Write(m.TrainedCount);
            });
            // Critical (upper case): a reader that predates it would take an older index snapshot for the checkpoint's.
            if (m.IndexLsn is long indexLsn)
            {
                w.Section("IDLT", b =>
                {
                    b.Write(indexLsn);
                    var removed = m.IndexRemoved ?? [];
                    b.Write(removed.Length);
                    foreach (long k in removed) b.Write(k);
                });
            }
        });

    public static Manifest? ReadManifest(string dir)
    {
        string path = Path.Combine(dir, ManifestFile);
        if (!File.Exists(path)) return null;
        using var f = new SectionReader(path, ManifestMagic, 1, 0);
        Manifest? m = null;
        long? indexLsn = null;
        long[]? removed = null;
        while (f.Next() is var (tag, payload, offset))
        {
            if (tag == "IDLT")
            {
                var d = new PayloadReader(f, tag, payload, offset);
                indexLsn = d.Int64("index LSN");
                int count = d.Int32In("removed key count", 0, d.Remaining / 8);
                removed = new long[count];
                for (int i = 0; i < count; i++) removed[i] = d.Int64("removed key");
                if (indexLsn < 0) throw f.Fail(offset, "negative index LSN.");
                continue;
            }
            if (tag != "CKPT")
            {
                f.SkipUnknown(tag, offset);
                continue;
            }
            var r = new PayloadReader(f, tag, payload, offset);
            long lsn = r.Int64("applied LSN");
            var tokenBytes = new byte[16];
            for (int i = 0; i < 16; i++) tokenBytes[i] = r.Byte("store token");
            string index = ReadString(ref r, f, "index file");
            long replay = r.Int64("replay address");
            long trained = r.Int64("trained count");
            if (lsn < 0 || replay < 0 || trained < 0) throw f.Fail(offset, "negative LSN, address or count.");
            if (index.Length > 0 && (index.Contains('/') || index.Contains('\\') || index.Contains("..")))
                throw f.Fail(offset, $"index file name \"{index}\" is not a plain file name.");
            m = new Manifest(lsn, new Guid(tokenBytes), index.Length == 0 ? null : index, replay, trained);
        }
        if (m is null) throw f.Fail(-1, "no CKPT section.");
        if (indexLsn > m.AppliedLsn) throw f.Fail(-1, $"index LSN {indexLsn} is past the checkpoint's {m.AppliedLsn}.");
        return m with { IndexLsn = indexLsn, IndexRemoved = removed };
    }
}
