using System.Text;
using Adanns.Engine.Persistence;
using Adanns.Engine.Transforms;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    private static ReadOnlySpan<byte> Magic => "ADNSIVF\u001A"u8;

    /// <summary>The first 8 bytes of every IVF index file.</summary>
    internal static ReadOnlySpan<byte> FileMagic => Magic;
    private const ushort FormatMajor = 1;

    /// <summary>
    /// Current minor version. 1.0 stored centroids and lists; 1.1 adds the per-list running sums behind the
    /// probe centroids (a 1.0 file recomputes them from the lists on load); 1.2 adds the SQ8 section for
    /// quantized scan stores (specs with SQ8 need it; older files never have such specs); 1.3 adds the optional
    /// PROF section holding the <see cref="ComputeProfile"/> (absent from older files and from never-profiled
    /// indexes, which load without a profile).
    /// </summary>
    private const ushort FormatMinor = 3;

    private const int MaxDimension = 1 << 16;
    private const int MaxNList = 1 << 24;

    /// <summary>
    /// Saves the index (spec, metric, rotation, centroids, every list with ids and full vectors) to a versioned,
    /// sectioned, CRC-checked file. Written to a temporary file and renamed, so a crash never leaves a partial file.
    /// </summary>
    public void Save(string path) => Save(path, FormatMinor);

    internal void Save(string path, ushort minor)
    {
        int D = Dimension;
        SectionFile.Write(path, Magic, FormatMajor, minor, w =>
        {
            w.Section("META", b =>
            {
                b.Write(D);
                b.Write((byte)Metric);
                b.Write(NList);
                b.Write(CoarseDim);
                b.Write(ScanStoreDims);
                b.Write(_nextAutoId);
                var spec = Encoding.UTF8.GetBytes(Spec.ToString());
                b.Write(spec.Length);
                b.Write(spec);
            });
            if (Rotation is not null)
            {
                w.Section("ROTN", b =>
                {
                    foreach (float v in Rotation.MatrixRowMajor) b.Write(v);
                    foreach (double e in Rotation.Eigenvalues) b.Write(e);
                });
            }
            if (ScanQuantizer is { } sq)
            {
                w.Section("SQ8 ", b =>
                {
                    b.Write(sq.Dimension);
                    foreach (float v in sq.Lo) b.Write(v);
                    foreach (float v in sq.Step) b.Write(v);
                });
            }
            w.Section("CENT", b =>
            {
                foreach (float v in _assignCentroids) b.Write(v);
            });
            if (minor >= 1)
            {
                w.Section("SUMS", b =>
                {
                    foreach (double v in _sums) b.Write(v);
                    foreach (int c in _liveCounts) b.Write(c);
                });
            }
            if (minor >= 3 && ComputeProfile is { } profile)
                w.Section("PROF", profile.Write);
            if (ComputeProfile is { TunedRecall: double tuned })
                w.Section("tune", b => b.Write(tuned)); // optional (lowercase): older readers skip it
            var row = new float[D];
            for (int l = 0; l < NList; l++)
            {
                var list = _lists[l];
                w.Section("LIST", b =>
                {
                    int live = list.Count - list.Tombstones;
                    b.Write(l);
                    b.Write(live);
                    // Live rows only: a loaded index starts compacted.
                    for (int p = 0; p < list.Count; p++)
                    {
                        long id = list.Ids[p];
                        if (id < 0) continue;
                        b.Write(id);
                        list.Read(p, row);
                        foreach (float v in row) b.Write(v);
                    }
                });
            }
        });
    }

    /// <summary>
    /// Loads an index saved by <see cref="Save(string)"/> (any 1.x version). A truncated or corrupted file, a
    /// failed checksum or an out-of-range length raises <see cref="IndexFileException"/> naming the file and offset.
    /// </summary>
    public static IvfIndex Load(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Index files are little-endian; this machine is not.");
        using var file = new SectionReader(path, Magic, FormatMajor, FormatMinor);
        IvfIndex? index = null;
        float[]? rotation = null;
        double[]? eigen = null;
        float[]? centroids = null;
        Quantization.ScalarQuantizer8? sq = null;
        (int D, Metric Metric, int NList, int Dc, int Store, long NextId, IndexSpec Spec)? meta = null;
        bool haveSums = false;
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
                        int D = r.Int32In("dimension", 1, MaxDimension);
                        int metric = r.Byte("metric");
                        if (!Enum.IsDefined((Metric)metric)) throw file.Fail(offset + 4, $"unknown metric code {metric}.");
                        int nlist = r.Int32In("nlist", 1, MaxNList);
                        int dc = r.Int32In("coarse dim", 1, D);
                        int store = r.Int32In("scan store dims", 1, D);
                        long next = r.Int64("next id");
                        string specText = r.String("spec", 4096);
                        var spec = IndexSpec.ParseStored(specText, D, path, offset);
                        if (spec.NList != nlist || (spec.CoarseDim ?? D) != dc)
                            throw file.Fail(offset, $"stored spec \"{spec}\" disagrees with nlist {nlist} / coarse dim {dc}.");
                        meta = (D, (Metric)metric, nlist, dc, store, next, spec);
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
                        sq = Quantization.ScalarQuantizer8.Read(ref r, path, offset, dims, "quantizer parameters");
                        break;
                    }
                case "CENT":
                    {
                        var m = meta ?? throw file.Fail(offset, "CENT section before META.");
                        r.EnsureFits((long)m.NList * m.Dc, 4, "centroids");
                        centroids = new float[m.NList * m.Dc];
                        r.FiniteFloats(centroids, "centroids");
                        if (m.Spec.Rotate && rotation is null)
                            throw file.Fail(offset, "the spec has Rot but the file has no ROTN section.");
                        if (m.Spec.Sq8 && sq is null)
                            throw file.Fail(offset, "the spec has SQ8 but the file has no SQ8 section before CENT.");
                        var rot = rotation is null ? null : RotationTransform.FromMatrix(m.D, rotation, eigen);
                        index = new IvfIndex(m.D, m.Metric, m.Spec, rot, centroids, m.Store, m.Spec.Sq8 ? sq : null) { _nextAutoId = m.NextId };
                        break;
                    }
                case "SUMS":
                    {
                        var ix = index ?? throw file.Fail(offset, "SUMS section before CENT.");
                        r.EnsureFits((long)ix.NList * ix.Dimension, 8, "centroid sums");
                        r.Doubles(ix._sums, "centroid sums");
                        r.Ints(ix._liveCounts, "list counts");
                        haveSums = true;
                        break;
                    }
                case "LIST":
                    {
                        var ix = index ?? throw file.Fail(offset, "LIST section before CENT.");
                        int l = r.Int32In("list number", 0, ix.NList - 1);
                        if (!listsSeen.Add(l)) throw file.Fail(offset, $"list {l} appears twice.");
                        int count = r.Int32In("list size", 0, int.MaxValue);
                        r.EnsureFits(count, 8 + 4L * ix.Dimension, $"list {l}'s {count} rows");
                        var list = ix._lists[l];
                        var row = new float[ix.Dimension];
                        for (int p = 0; p < count; p++)
                        {
                            long id = r.Int64("id");
                            r.Floats(row, "vector");
                            if (id < 0 || ix._idToSlot.ContainsKey(id))
                                throw file.Fail(offset, $"list {l} row {p}: id {id} is negative or duplicated.");
                            int pos = list.Append(row, id);
                            ix._idToSlot[id] = ((long)l << 32) | (uint)pos;
                            if (!haveSums) ix.UpdateSums(l, row, +1);
                        }
                        break;
                    }
                case "tune":
                    {
                        double t = r.Double("tuned recall");
                        if (!(t > 0 && t <= 1)) throw file.Fail(offset, $"section \"tune\": tuned recall {t} is not in (0, 1].");
                        tunedRecall = t;
                        break;
                    }
                case "PROF":
                    {
                        var m = meta ?? throw file.Fail(offset, "PROF section before META.");
                        profile = ComputeProfile.Read(ref r, file, offset, m.D, m.NList);
                        break;
                    }
                default:
                    file.SkipUnknown(tag, offset); // an optional section from a newer minor version is skipped
                    break;
            }
        }
        if (index is null) throw file.Fail(-1, "no META/CENT sections.");
        index._listStarts = null;
        if (haveSums)
        {
            for (int l = 0; l < index.NList; l++)
            {
                int live = index._lists[l].Count;
                if (index._liveCounts[l] != live)
                    throw file.Fail(-1, $"list {l} holds {live} rows but its centroid sums count {index._liveCounts[l]}.");
                index.RefreshProbeCentroid(l);
            }
        }
        if (tunedRecall is not null && profile is null) throw file.Fail(-1, "section \"tune\" without a PROF section (a tuned recall needs the frontier).");
        if (profile is not null) profile.TunedRecall = tunedRecall;
        index.ComputeProfile = profile;
        return index;
    }
}
