using System.Buffers.Binary;
using System.Globalization;
using Adanns.Engine.Clustering;
using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// Index files of every format version the engine has written, committed under <c>Golden/</c> with the results
/// they gave: each must still load through <see cref="VectorIndex.Load"/> and return the same ids and scores.
/// </summary>
/// <remarks>
/// The files are small (300 × 16 vectors). They were written by <see cref="Write"/> (run it by hand, see
/// <see cref="Regenerate"/>) with the writers of commit 250d105 (the generator), whose output for these versions is byte for byte what
/// the earlier releases wrote: IVF 1.0–1.3 through the writer's explicit minor version, PQ 1.0–1.6 (1.7: commit of the
/// SQ8/float scan codecs; 1.8: commit of the RaBitQ codec; 1.9 (dense RaBitQ rotation) and 1.11 (structured RaBitQ
/// rotation, a 12-dim code: two overlapping 8-dim blocks): commit of the structured rotation; 1.10 (a plain float / SQ8
/// spec, the format that replaced the IVF files, here with <c>Rot</c>): the audit commit after d215902) by choosing specs
/// whose features need exactly that version (a file is written with the lowest minor that describes it).
/// Never regenerate them to make a failing test pass: a failure means an old file no longer loads as it did.
/// </remarks>
public class GoldenIndexFileTests
{
    private const int N = 300, D = 16, NQ = 10, K = 5;
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Golden");

    /// <summary>(file, spec, how it is written): one row per format version.</summary>
    private static readonly (string File, string Spec, string How)[] Files =
    [
        ("ivf-1.0.ivf", "IVF4", "minor0"),
        ("ivf-1.1.ivf", "Rot,IVF4@8,Scan8,Rerank16", "minor1"),
        ("ivf-1.2.ivf", "IVF4@8,Scan8,SQ8,Rerank16", "minor2"),
        ("ivf-1.3.ivf", "IVF4@8,Scan8,SQ8,Rerank16", "profiled"),
        ("pq-1.0.pqx", "PQ4@16,Rerank16", "plain"),
        ("pq-1.1.pqx", "PQ4@16,Rerank16", "external"),
        ("pq-1.2.pqx", "PQ8x4@16,Shortlist40,Rerank16", "plain"),
        ("pq-1.3.pqx", "PQ4@16,Prefix8@8,Shortlist40,Rerank8/20,Rerank16", "plain"),
        ("pq-1.4.pqx", "Rot,IVF4@8,PQ4@16,Spill,Rerank16", "inListOrder"),
        ("pq-1.5.pqx", "IVF4@8,OPQ4@16,Shortlist40,Rerank16", "plain"),
        ("pq-1.6.pqx", "IVF4@8,PQ8x4@16,Shortlist40,Rerank16", "profiled"),
        ("pq-1.7.pqx", "IVF4@8,Scan8,SQ8,Spill,Shortlist40,Rerank16", "plain"),
        ("pq-1.8.pqx", "IVF4@8,RQ2@16,Spill,Shortlist40,Rerank16", "plain"),
        ("pq-1.9.pqx", "IVF4@8,RQ2@16,Spill,Shortlist40,Rerank16", "denseRq"),
        ("pq-1.10.pqx", "Rot,IVF4@8,Scan8,SQ8,Rerank16", "plain"),
        ("pq-1.11.pqx", "IVF4@8,RQ1@12,Spill,Shortlist40,Rerank16", "plain"),
    ];

    public static TheoryData<string> FileNames()
    {
        var data = new TheoryData<string>();
        foreach (var f in Files) data.Add(f.File);
        return data;
    }

    private static (VectorSet Base, float[] Queries) Data()
    {
        var b = Engine.IO.VectorFile.ReadVectors(Path.Combine(Dir, "base.fvecs"));
        using var q = Engine.IO.VectorFile.ReadVectors(Path.Combine(Dir, "queries.fvecs"));
        return (b, q.ToArray());
    }

    [Theory]
    [MemberData(nameof(FileNames))]
    public void OlderFormatsLoadAndSearchAsTheyDid(string file)
    {
        var (b, queries) = Data();
        using var owned = b;
        var (spec, version) = (Files.Single(f => f.File == file).Spec, file[(file.IndexOf('-') + 1)..file.LastIndexOf('.')]);
        string path = Path.Combine(Dir, file);
        var header = File.ReadAllBytes(path).AsSpan(0, 12);
        Assert.Equal(version, $"{BinaryPrimitives.ReadUInt16LittleEndian(header[8..])}.{BinaryPrimitives.ReadUInt16LittleEndian(header[10..])}");

        using var index = VectorIndex.Load(path, new RowSource(b));
        Assert.Equal(IndexSpec.Parse(spec), index.Spec);
        Assert.Equal(N, index.Count);
        var expected = Expected()[file];
        var got = index.SearchBatch(queries, K, null, null, 1, out _);
        Assert.Equal(expected.Ids, got.Ids);
        // The expected scores were computed on the AVX-512 kernels, and are identical there. Narrower vectors (AVX2,
        // DOTNET_EnableAVX512=0; other CPUs) sum in another order: the same ids, scores within float rounding.
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            Assert.Equal(expected.Scores, got.Scores);
        else
            for (int i = 0; i < got.Scores.Length; i++)
                Assert.True(Math.Abs(expected.Scores[i] - got.Scores[i]) <= 1e-5f * (1 + Math.Abs(expected.Scores[i])), $"{file} score {i}: {got.Scores[i]} vs {expected.Scores[i]}");
        if (file.Contains("1.3.ivf") || file.Contains("1.6.pqx"))
        {
            Assert.NotNull(index.ComputeProfile);
            index.Resolve(new SearchParams { MaxFlops = 1e9 }, K); // the stored frontier answers budgets
        }
    }

    private static Dictionary<string, (long[] Ids, float[] Scores)> Expected()
    {
        var map = new Dictionary<string, (long[], float[])>();
        foreach (var line in File.ReadAllLines(Path.Combine(Dir, "expected.tsv")))
        {
            var parts = line.Split('\t');
            map[parts[0]] = (parts[1].Split(',').Select(long.Parse).ToArray(),
                parts[2].Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray());
        }
        return map;
    }

    [Fact(Skip = "Writes the golden files: set ADANNS_GOLDEN_OUT to a directory and run this test alone, by hand (see the class remarks).")]
    public void Regenerate() => Write(Environment.GetEnvironmentVariable("ADANNS_GOLDEN_OUT") ?? throw new InvalidOperationException("Set ADANNS_GOLDEN_OUT."));

    /// <summary>Writes base.fvecs, queries.fvecs, every golden index file and expected.tsv into <paramref name="dir"/>.</summary>
    internal static void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        var ds = Engine.Data.SyntheticMatryoshka.Generate(new Engine.Data.SyntheticMatryoshka.Options(N, D, Clusters: 12, Queries: NQ, Seed: 2026));
        using var b = ds.Base;
        using var qs = ds.Queries;
        Engine.IO.VectorFile.WriteVectors(Path.Combine(dir, "base.fvecs"), b);
        Engine.IO.VectorFile.WriteVectors(Path.Combine(dir, "queries.fvecs"), qs);
        var queries = qs.ToArray();
        var km = new KMeansOptions(MaxIterations: 5, Seed: 1);
        var lines = new List<string>();
        foreach (var (file, spec, how) in Files)
        {
            string path = Path.Combine(dir, file);
            IVectorIndex index;
            if (file.StartsWith("ivf", StringComparison.Ordinal))
            {
                // The IVF files' writer (the earlier IVF class) is gone: its format is only read now
                // (IvfIndex.LoadIvfFile). Keep the committed files; their expected results stay as they were written.
                File.Copy(Path.Combine(Dir, file), path, overwrite: true);
                index = VectorIndex.Load(path);
                lines.Add(File.ReadAllLines(Path.Combine(Dir, "expected.tsv")).Single(l => l.StartsWith(file + "\t", StringComparison.Ordinal)));
                index.Dispose();
                continue;
            }
            else
            {
                var pq = IvfIndex.Build(b, spec, Metric.Cosine, new PqBuildOptions(km, PqIterations: 5, TrainingSample: N, Threads: 1)
                {
                    RaBitQRotation = how == "denseRq" ? Quantization.RaBitQRotation.Dense : Quantization.RaBitQRotation.Hadamard,
                });
                if (how == "external") pq.UseExternalVectors(new RowSource(b));
                if (how == "profiled") pq.Profile(new ProfileOptions { HeldOutQueries = 20, Threads = 1 });
                if (how == "inListOrder")
                {
                    // 1.4 (Spill, no ORDR) is written when the first copies' slots already run in list order: add the rows
                    // to an index trained on the same data (same centroids) in the order their lists hold them.
                    var order = FirstCopiesInListOrder(pq);
                    using var sorted = new VectorSet(D, N);
                    foreach (long id in order) sorted.Add(b.Row((int)id));
                    pq.Dispose();
                    pq = IvfIndex.Train(b, IndexSpec.Parse(spec), Metric.Cosine, new PqBuildOptions(km, PqIterations: 5, TrainingSample: N, Threads: 1));
                    pq.AddRange(sorted, order, threads: 1);
                }
                pq.Save(path);
                index = pq;
            }
            using var loaded = VectorIndex.Load(path, new RowSource(b));
            var r = loaded.SearchBatch(queries, K, null, null, 1, out _);
            lines.Add($"{file}\t{string.Join(',', r.Ids)}\t{string.Join(',', r.Scores.Select(s => s.ToString("R", CultureInfo.InvariantCulture)))}");
            index.Dispose();
        }
        File.WriteAllLines(Path.Combine(dir, "expected.tsv"), lines);
    }

    /// <summary>The ids of an index's first copies, list by list, in list order (read through reflection: a generator's need only).</summary>
    private static long[] FirstCopiesInListOrder(IvfIndex index)
    {
        const System.Reflection.BindingFlags Private = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance;
        var lists = (Array)typeof(IvfIndex).GetField("_lists", Private)!.GetValue(index)!;
        var slotIds = (long[])typeof(IvfIndex).GetField("_slotIds", Private)!.GetValue(index)!;
        var idToLoc = (Dictionary<long, long>)typeof(IvfIndex).GetField("_idToLoc", Private)!.GetValue(index)!;
        var order = new List<long>();
        for (int l = 0; l < lists.Length; l++)
        {
            object list = lists.GetValue(l)!;
            int count = (int)list.GetType().GetProperty("Count")!.GetValue(list)!;
            var slots = (int[])list.GetType().GetProperty("Slots")!.GetValue(list)!;
            for (int p = 0; p < count; p++)
            {
                long id = slotIds[slots[p]];
                if (idToLoc[id] == (((long)l << 32) | (uint)p)) order.Add(id);
            }
        }
        return [.. order];
    }
}
