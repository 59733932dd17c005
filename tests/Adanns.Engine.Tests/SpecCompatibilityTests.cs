using Adanns.Engine.Indexes;

namespace Adanns.Engine.Tests;

/// <summary>
/// Issue 14 item 3: every spec string that parsed at an earlier stage of the grammar still parses and means the same
/// thing. One spec per component as each commit introduced it (IVF f273587; SQ8 9caa122; PQ/OPQ, Resid and flat PQ
/// 0550240; 4-bit x4 11bb7a4; Prefix8 09c49b2; Spill 9e031ba; RaBitQ 9ddcad6), with the fields it meant there, written
/// out by hand (not read back from today's parser). The grammar has only ever gained components; none was removed or
/// renamed (git log -p of IndexSpec.cs).
/// </summary>
public class SpecCompatibilityTests
{
    private static readonly RerankStage R384 = new(384, null);

    public static TheoryData<string, IndexSpec> Specs() => new()
    {
        { "IVF1024", new IndexSpec { NList = 1024 } },
        { "ivf16@8 , scan4", new IndexSpec { NList = 16, CoarseDim = 8, ScanDim = 4 } },
        { "Rot,IVF1024@64,Scan32,Shortlist400,Rerank96/100,Rerank384",
            new IndexSpec { Rotate = true, NList = 1024, CoarseDim = 64, ScanDim = 32, Shortlist = 400, Rerank = [new(96, 100), R384] } },
        { "IVF128,NProbe8", new IndexSpec { NList = 128, NProbe = 8 } },
        { "IVF1024@64,Scan128,SQ8,Rerank384", new IndexSpec { NList = 1024, CoarseDim = 64, ScanDim = 128, Sq8 = true, Rerank = [R384] } },
        { "OPQ32", new IndexSpec { NList = 1, PqBytes = 32, Opq = true } },
        { "PQ16,Shortlist50,Rerank64", new IndexSpec { NList = 1, PqBytes = 16, Shortlist = 50, Rerank = [new(64, null)] } },
        { "OPQ32@96,Shortlist100,Rerank384", new IndexSpec { NList = 1, PqBytes = 32, PqDim = 96, Opq = true, Shortlist = 100, Rerank = [R384] } },
        { "IVF1024@64,PQ32@128,Resid,Rerank384",
            new IndexSpec { NList = 1024, CoarseDim = 64, PqBytes = 32, PqDim = 128, Residual = true, Rerank = [R384] } },
        { "Rot,IVF1024@64,OPQ32@96,NProbe32,Shortlist200,Rerank384",
            new IndexSpec { Rotate = true, NList = 1024, CoarseDim = 64, PqBytes = 32, PqDim = 96, Opq = true, NProbe = 32, Shortlist = 200, Rerank = [R384] } },
        { "IVF1024@384,OPQ64x4@128,NProbe96,Shortlist200,Rerank384",
            new IndexSpec { NList = 1024, CoarseDim = 384, PqBytes = 64, PqBits = 4, PqDim = 128, Opq = true, NProbe = 96, Shortlist = 200, Rerank = [R384] } },
        { "IVF32@16,PQ32x4@32,Prefix8@48,NProbe8,Shortlist100,Rerank48/30,Rerank64",
            new IndexSpec { NList = 32, CoarseDim = 16, PqBytes = 32, PqBits = 4, PqDim = 32, Prefix8Dim = 48, NProbe = 8, Shortlist = 100, Rerank = [new(48, 30), new(64, null)] } },
        { "Rot,IVF2048@128,PQ64x4@128,Spill,Prefix8@192,NProbe32,Shortlist160,Rerank192/30,Rerank384",
            new IndexSpec { Rotate = true, NList = 2048, CoarseDim = 128, PqBytes = 64, PqBits = 4, PqDim = 128, Spill = true, Prefix8Dim = 192, NProbe = 32, Shortlist = 160, Rerank = [new(192, 30), R384] } },
        { "IVF1024@32,Scan32,SQ8,Spill,Prefix8@192,Rerank192/60,Rerank384",
            new IndexSpec { NList = 1024, CoarseDim = 32, ScanDim = 32, Sq8 = true, Spill = true, Prefix8Dim = 192, Rerank = [new(192, 60), R384] } },
        { "Rot,IVF980@256,RQ1@392,Spill,Rerank392/40,Rerank784",
            new IndexSpec { Rotate = true, NList = 980, CoarseDim = 256, RqBits = 1, RqDim = 392, Spill = true, Rerank = [new(392, 40), new(784, null)] } },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void EarlierSpecsStillParseToTheSameMeaning(string text, IndexSpec meant)
    {
        var spec = IndexSpec.Parse(text);
        Assert.Equal(meant, spec);
        Assert.Equal(meant.ToString(), spec.ToString());
        Assert.Equal(spec, IndexSpec.Parse(spec.ToString())); // the canonical form means the same
    }
}
