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
    }
}
