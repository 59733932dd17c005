using Adanns.Engine.Persistence;

namespace Adanns.Engine.Tests;

/// <summary>Corrupted copies of a saved index file, shared by every index format's tests.</summary>
internal static class IndexFileCorruption
{
    /// <summary>
    /// Writes <paramref name="data"/> to a new file in <paramref name="dir"/> and checks that <paramref name="load"/>
    /// rejects it with an <see cref="IndexFileException"/> naming the file and containing <paramref name="fragment"/>.
    /// </summary>
    public static void Expect(string dir, byte[] data, string extension, Action<string> load, string fragment)
    {
        string p = Path.Combine(dir, Guid.NewGuid().ToString("N") + extension);
        File.WriteAllBytes(p, data);
        var e = Assert.Throws<IndexFileException>(() => load(p));
        Assert.Contains(Path.GetFileName(p), e.Message);
        Assert.Contains(fragment, e.Message);
    }

    /// <summary>The corruptions every sectioned file must survive: a flipped bit, a cut tail, a foreign magic, and a
    /// section length pointing past the end of the file.</summary>
    public static void ExpectCommonOnesRejected(string dir, byte[] bytes, string extension, Action<string> load)
    {
        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0x40;
        Expect(dir, flipped, extension, load, "checksum");
        Expect(dir, bytes[..(bytes.Length - 9)], extension, load, "truncated");
        var badMagic = (byte[])bytes.Clone();
        badMagic[0] = (byte)'X';
        Expect(dir, badMagic, extension, load, "magic");
        var hugeLen = (byte[])bytes.Clone();
        BitConverter.TryWriteBytes(hugeLen.AsSpan(16 + 4), 1L << 40);
        Expect(dir, hugeLen, extension, load, "declares");

        // A section this build does not know, with a valid checksum: critical (uppercase) tags are rejected, since
        // they may change how the others must be read; optional (lowercase) ones are skipped and the file loads.
        Expect(dir, WithSection(bytes, "ZZZZ", [1, 2, 3]), extension, load, "section \"ZZZZ\" is required");
        string optional = Path.Combine(dir, Guid.NewGuid().ToString("N") + extension);
        File.WriteAllBytes(optional, WithSection(bytes, "zzzz", [1, 2, 3]));
        load(optional);

        // A non-finite centroid, checksum recomputed: rejected by value, not by checksum.
        Expect(dir, PatchSection(bytes, "CENT", payload => BitConverter.TryWriteBytes(payload.AsSpan(4), float.NaN)), extension, load, "must be finite");
    }

    /// <summary><paramref name="bytes"/> with one more section, before the END section (the last 16 bytes).</summary>
    public static byte[] WithSection(byte[] bytes, string tag, byte[] payload)
    {
        using var m = new MemoryStream();
        m.Write(bytes, 0, bytes.Length - 16);
        m.Write(System.Text.Encoding.ASCII.GetBytes(tag));
        m.Write(BitConverter.GetBytes((ulong)payload.Length));
        m.Write(payload);
        m.Write(BitConverter.GetBytes(System.IO.Hashing.Crc32.HashToUInt32(payload)));
        m.Write(bytes, bytes.Length - 16, 16);
        return m.ToArray();
    }

    /// <summary>A copy with the first section named <paramref name="tag"/> changed by <paramref name="patch"/> and its checksum recomputed.</summary>
    public static byte[] PatchSection(byte[] bytes, string tag, Action<byte[]> patch)
    {
        var copy = (byte[])bytes.Clone();
        int at = 16;
        while (at + 12 <= copy.Length)
        {
            string t = System.Text.Encoding.ASCII.GetString(copy, at, 4);
            int len = checked((int)BitConverter.ToUInt64(copy, at + 4));
            if (t == tag)
            {
                var payload = copy.AsSpan(at + 12, len).ToArray();
                patch(payload);
                payload.CopyTo(copy, at + 12);
                BitConverter.TryWriteBytes(copy.AsSpan(at + 12 + len), System.IO.Hashing.Crc32.HashToUInt32(payload));
                return copy;
            }
            at += 12 + len + 4;
        }
        throw new InvalidOperationException($"no {tag} section");
    }
}
