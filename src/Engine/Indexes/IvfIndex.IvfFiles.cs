using Adanns.Engine.Persistence;
using Adanns.Engine.Quantization;
using Adanns.Engine.Transforms;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    private static ReadOnlySpan<byte> IvfMagic => "ADNSIVF\u001A"u8;

    /// <summary>The first 8 bytes of the index files the engine's earlier IVF class wrote (plain float / SQ8 specs).</summary>
    internal static ReadOnlySpan<byte> IvfFileMagic => IvfMagic;

    /// <summary>
    /// Loads an IVF index file (format 1.0–1.3, written for plain float / SQ8 specs by the engine's earlier IVF class)
    /// into the one pipeline: the same spec, centroids, rotation, scan quantizer, list assignment, row order (so ties
    /// break alike), running list means and profile; the rows become the resident rerank store and the scan codes are
    /// re-encoded from them (float codes are the rows' prefixes; SQ8 codes use the file's quantizer). Versions: 1.0
    /// centroids and lists; 1.1 adds SUMS, the per-list running sums behind the probe means (recomputed from the lists
    /// when absent); 1.2 adds "SQ8 " (the scan store's quantizer); 1.3 adds the optional PROF section.
    /// </summary>
    public static IvfIndex LoadIvfFile(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Index files are little-endian; this machine is not.");
        using var file = new SectionReader(path, IvfMagic, 1, 3);
        IvfIndex? index = null;
        EncodeScratch? scratch = null;
        float[]? rotation = null;
        double[]? eigen = null;
        ScalarQuantizer8? sq = null;
        (int D, Metric Metric, int NList, int Dc, int Store, long NextId, IndexSpec Spec)? meta = null;
        double[]? sums = null;
        int[]? liveCounts = null;
        ComputeProfile? profile = null;
        double? tunedRecall = null;
        var listsSeen = new HashSet<int>();

        while (file.Next() is var (tag, payload, offset))
        {
            var r = new PayloadReader(file, tag, payload, offset);
            switch (tag)
            {
                case "META":
                    {
                        var (D, metric, nlist, dc) = ReadMetaHead(ref r, file, offset);
                        int store = r.Int32In("scan store dims", 1, D);
                        long next = r.Int64("next id");
                        string specText = r.String("spec", 4096);
                        var spec = IndexSpec.ParseStored(specText, D, path, offset);
                        if (spec.NList != nlist || (spec.CoarseDim ?? D) != dc || spec.IsCodecPipeline)
                            throw file.Fail(offset, $"stored spec \"{spec}\" disagrees with nlist {nlist} / coarse dim {dc} (or is not a float / SQ8 IVF spec).");
                        meta = (D, metric, nlist, dc, store, next, spec);
                        break;
                    }
                case "ROTN":
                    {
                        var m = meta ?? throw file.Fail(offset, "ROTN section before META.");
                        r.EnsureFits((long)m.D * m.D, 4, "rotation matrix");
                        rotation = new float[m.D * m.D];
                        r.FiniteFloats(rotation, "rotation matrix");
                        eigen = new double[m.D];
                        r.Doubles(eigen, "eigenvalues");
                        break;
                    }
                case "SQ8 ":
                    {
                        var m = meta ?? throw file.Fail(offset, "SQ8 section before META.");
                        int dims = r.Int32In("quantized dims", 1, m.D);
                        if (dims != m.Store) throw file.Fail(offset, $"quantizer covers {dims} dims but the scan store holds {m.Store}.");
                        sq = ScalarQuantizer8.Read(ref r, path, offset, dims, "quantizer parameters");
                        break;
                    }
                case "CENT":
                    {
                        var m = meta ?? throw file.Fail(offset, "CENT section before META.");
                        r.EnsureFits((long)m.NList * m.Dc, 4, "centroids");
                        var centroids = new float[m.NList * m.Dc];
                        r.FiniteFloats(centroids, "centroids");
                        if (m.Spec.Rotate && rotation is null)
                            throw file.Fail(offset, "the spec has Rot but the file has no ROTN section.");
                        if (m.Spec.Sq8 && sq is null)
                            throw file.Fail(offset, "the spec has SQ8 but the file has no SQ8 section before CENT.");
                        var rot = rotation is null ? null : RotationTransform.FromMatrix(m.D, rotation, eigen);
                        index = new IvfIndex(m.D, m.Metric, m.Spec, rot, centroids, null, null, null, null, m.Spec.Sq8 ? sq : null, scanStoreDims: m.Store)
                        {
                            _nextAutoId = m.NextId,
                        };
                        scratch = new EncodeScratch(index);
                        break;
                    }
                case "SUMS":
                    {
                        var ix = index ?? throw file.Fail(offset, "SUMS section before CENT.");
                        r.EnsureFits((long)ix.NList * ix.Dimension, 8, "centroid sums");
                        sums = new double[(long)ix.NList * ix.Dimension];
                        r.Doubles(sums, "centroid sums");
                        liveCounts = new int[ix.NList];
                        r.Ints(liveCounts, "list counts");
                        break;
                    }
                case "LIST":
                    {
                        var ix = index ?? throw file.Fail(offset, "LIST section before CENT.");
                        int l = r.Int32In("list number", 0, ix.NList - 1);
                        if (!listsSeen.Add(l)) throw file.Fail(offset, $"list {l} appears twice.");
                        int count = r.Int32In("list size", 0, int.MaxValue);
                        r.EnsureFits(count, 8 + 4L * ix.Dimension, $"list {l}'s {count} rows");
                        var row = new float[ix.Dimension];
                        var code = new byte[ix._codeWidth];
                        for (int p = 0; p < count; p++)
                        {
                            long id = r.Int64("id");
                            r.Floats(row, "vector");
                            if (id < 0 || ix._idToLoc.ContainsKey(id))
                                throw file.Fail(offset, $"list {l} row {p}: id {id} is negative or duplicated.");
                            ix.EncodeInto(row, l, code, scratch!);
                            ix.Append(l, row, code, id);
                        }
                        break;
                    }
                case "tune":
                case "PROF":
                    ReadTuning(tag, ref r, file, offset, meta is { } known ? (known.D, known.NList) : null, ref tunedRecall, ref profile);
                    break;
                default:
                    file.SkipUnknown(tag, offset); // an optional section from a newer minor version is skipped
                    break;
            }
        }
        if (index is null) throw file.Fail(-1, "no META/CENT sections.");
        if (sums is not null && index.NList > 1)
        {
            // The saved running sums, as they were (the recomputed ones could differ in the last bits).
            for (int l = 0; l < index.NList; l++)
                if (liveCounts![l] != index._lists[l].Count)
                    throw file.Fail(-1, $"list {l} holds {index._lists[l].Count} rows but its centroid sums count {liveCounts[l]}.");
            index._sums = sums;
            index._liveCounts = liveCounts;
            index._writeVersion++;
        }
        if (tunedRecall is not null && profile is null) throw file.Fail(-1, "section \"tune\" without a PROF section (a tuned recall needs the frontier).");
        if (profile is not null) profile.TunedRecall = tunedRecall;
        index.ComputeProfile = profile;
        return index;
    }
}
