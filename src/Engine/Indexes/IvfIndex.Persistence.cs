using System.Text;
using Adanns.Engine.Persistence;
using Adanns.Engine.Quantization;
using Adanns.Engine.Transforms;
using Adanns.Kernels;

namespace Adanns.Engine.Indexes;

public sealed partial class IvfIndex
{
    private static ReadOnlySpan<byte> Magic => "ADNSPQX\u001A"u8;

    /// <summary>The first 8 bytes of every PQ index file.</summary>
    internal static ReadOnlySpan<byte> FileMagic => Magic;
    private const ushort FormatMajor = 1;

    /// <summary>
    /// Current minor version. 1.0: the first PQ index format (every LIST row holds id, code and full vector). 1.1 adds
    /// the XVEC section: the index reads its full vectors from an external <see cref="IVectorSource"/>, and LIST rows
    /// hold id and code only. 1.2: 4-bit codes (spec <c>PQ{m}x4</c>): PQCB holds M × 16 × d/M floats and each LIST
    /// row's code is M/2 bytes, sub-quantizer 2p in the low nibble of byte p and 2p+1 in the high nibble. 1.3: the
    /// 8-bit prefix copy (spec <c>Prefix8@d</c>): PR8Q (before the lists) holds its d offsets and d steps, PR8R (after
    /// them) the row count, then per stored row, in the lists' order, d code bytes and the prefix's squared norm. 1.4:
    /// <c>Spill</c> — LIST sections hold each vector once (in its first list); SPIL (after them) holds the count of
    /// second copies, then (list, id) for each: the copy reuses the first one's code and vector. 1.5: ORDR (after the
    /// lists) holds the row count, then for each LIST row in file order the rank of its slot: the loaded index numbers
    /// its rows in the saved one's order, so ties (broken by that order) break alike and results are identical. A file
    /// is written with the lowest minor version that describes it, so older readers load what they can. 1.6: PROF (after
    /// the lists, as in IVF files) holds the <see cref="ComputeProfile"/> of a profiled index; older readers skip it.
    /// 1.7: SQ8 and float scan codes (<see cref="ListCodec.Sq8"/>, <see cref="ListCodec.Float"/>: specs with Spill or
    /// Prefix8 but no PQ): META's code dim is d_s and its code bytes the unpacked code width (d_s, or 4·d_s for float);
    /// there is no PQCB; SCNQ (before the lists, SQ8 only) holds the d_s offsets and d_s steps of the scan quantizer;
    /// each LIST row's code is d_s bytes (SQ8) or d_s little-endian floats (float).
    /// 1.8: RaBitQ codes (<see cref="ListCodec.RaBitQ"/>, spec <c>RQ{b}@{d}</c>): META's code dim is d and its code bytes
    /// d + 16; RBQC (before the lists) holds b, ε0, the d×d random orthogonal transform and the nlist × d list centres;
    /// each LIST row's code is d value bytes (each &lt; 2^b) then 4 floats (the factors); SPIL rows hold, after (list,
    /// id), the second copy's own code (RaBitQ codes are residuals to their list).
    /// 1.9: RaBitQ codes carry 3 factors (A′, S, E; code bytes d + 12), A′ with the centre term folded in (see
    /// <see cref="RaBitQuantizer"/>); 1.8 files' codes (A, S, E, Σu) are converted on load.
    /// 1.10: every float / SQ8 spec, plain ones (no Spill, no Prefix8: formerly their own IVF file format, which
    /// <see cref="LoadIvfFile"/> still reads) included, and scan codes wider than the spec's scan dim
    /// (<see cref="PqBuildOptions.ScanStoreDims"/>): META's code dim is then the codes' dims.
    /// 1.11: RaBitQ codes with a structured random rotation (<see cref="RaBitQRotation.Hadamard"/>): RBQH replaces RBQC
    /// (same place) and holds b, ε0, the rounds, the rotation's sign bytes (<see cref="HadamardRotation.Negative"/>: rounds
    /// × blocks × n bytes, each 0 or 1) and the nlist × d list centres. Files with a dense P keep RBQC and version 1.9.
    /// </summary>
    private const ushort FormatMinor = 11;

    /// <summary>Factor bytes of a 1.8 file's RaBitQ code (A, S, E, Σu).</summary>
    private const int V18RaBitQFactorBytes = 16;

    /// <summary>
    /// A code as read from a file: itself, or for a 1.8 RaBitQ code (d + 16 bytes) its 1.9 form for list
    /// <paramref name="list"/>, written into <paramref name="converted"/>.
    /// </summary>
    private ReadOnlySpan<byte> FromStoredRaBitQ(byte[] code, int list, byte[] converted)
    {
        if (Codec != ListCodec.RaBitQ || code.Length == _codeWidth) return code;
        RaBitQ!.FromStoredV18(code, list, converted);
        return converted;
    }

    private const int MaxDimension = 1 << 16;
    private const int MaxNList = 1 << 24;

    /// <summary>
    /// Saves the index — spec, metric, rotation, coarse centroids, OPQ rotation, PQ codebooks, residual centroids, and
    /// every list's ids, codes and full vectors (ids and codes only when the vectors come from an external source) —
    /// to a versioned, sectioned, CRC-checked file, written to a temporary file and renamed (a crash never leaves a
    /// partial file). Codes are stored, not recomputed on load.
    /// </summary>
    public void Save(string path)
    {
        int D = Dimension, d = CodeDim, m = Codec == ListCodec.Pq ? SubQuantizers : _codeWidth;
        bool external = _rows is null;
        bool ordered = SlotsInFileOrder();
        bool plainOrWide = Codec is ListCodec.Float or ListCodec.Sq8 && (!Spec.IsCodecPipeline || CodeDim != (Spec.ScanDim ?? CoarseDim));
        ushort minor = plainOrWide ? (ushort)10 : Codec == ListCodec.RaBitQ ? (RaBitQ!.Hadamard is not null ? (ushort)11 : (ushort)9) : Codec != ListCodec.Pq ? (ushort)7 : ComputeProfile is not null ? (ushort)6 : !ordered ? (ushort)5 : Spill ? (ushort)4 : _prefix8 is not null ? (ushort)3 : FastScan ? (ushort)2 : external ? (ushort)1 : (ushort)0;
        var code = new byte[_codeWidth];
        var packed = new byte[Codec == ListCodec.RaBitQ ? _codeWidth : CodeBytes]; // RaBitQ files hold the unpacked code (values, factors)
        SectionFile.Write(path, Magic, FormatMajor, minor, w =>
        {
            w.Section("META", b =>
            {
                b.Write(D);
                b.Write((byte)Metric);
                b.Write(NList);
                b.Write(CoarseDim);
                b.Write(d);
                b.Write(m);
                b.Write(_nextAutoId);
                var spec = Encoding.UTF8.GetBytes(Spec.ToString());
                b.Write(spec.Length);
                b.Write(spec);
            });
            if (external)
                w.Section("XVEC", _ => { });
            if (Rotation is not null)
                w.Section("ROTN", b => WriteRotation(b, Rotation));
            if (Opq is not null)
                w.Section("OPQR", b => WriteRotation(b, Opq));
            if (Quantizer is { } pq)
            {
                w.Section("PQCB", b =>
                {
                    foreach (float v in pq.Codebooks) b.Write(v);
                });
            }
            if (ScanQuantizer is { } sq)
            {
                w.Section("SCNQ", b =>
                {
                    foreach (float v in sq.Lo) b.Write(v);
                    foreach (float v in sq.Step) b.Write(v);
                });
            }
            w.Section("CENT", b =>
            {
                foreach (float v in _coarse) b.Write(v);
            });
            if (RaBitQ is { Hadamard: { } h } rqh)
            {
                w.Section("RBQH", b =>
                {
                    b.Write(rqh.Bits);
                    b.Write(rqh.Epsilon0);
                    b.Write(h.Rounds);
                    b.Write(h.Negative);
                    foreach (float v in rqh.Centers) b.Write(v);
                });
            }
            else if (RaBitQ is { } rq)
            {
                w.Section("RBQC", b =>
                {
                    b.Write(rq.Bits);
                    b.Write(rq.Epsilon0);
                    foreach (float v in rq.Rotation!.MatrixRowMajor) b.Write(v);
                    foreach (float v in rq.Centers) b.Write(v);
                });
            }
            if (_residCentroids is not null)
            {
                w.Section("RESC", b =>
                {
                    foreach (float v in _residCentroids) b.Write(v);
                });
            }
            if (_prefix8 is not null)
            {
                w.Section("PR8Q", b =>
                {
                    foreach (float v in _prefix8.Quantizer.Lo) b.Write(v);
                    foreach (float v in _prefix8.Quantizer.Step) b.Write(v);
                });
            }
            for (int l = 0; l < NList; l++)
            {
                var list = _lists[l];
                w.Section("LIST", b =>
                {
                    b.Write(l);
                    b.Write(FirstCopies(l));
                    for (int p = 0; p < list.Count; p++)
                    {
                        int slot = list.Slots[p];
                        if (slot < 0) continue; // live rows only: a loaded index starts compacted
                        if (Spill && !IsFirstCopy(l, p, slot)) continue; // second copies go to SPIL
                        b.Write(_slotIds[slot]);
                        list.ReadCode(p, code);
                        PackCode(code, packed);
                        b.Write(packed);
                        if (!external)
                            foreach (float v in _rows!.Row(slot)) b.Write(v);
                    }
                });
            }
            if (!ordered)
            {
                w.Section("ORDR", b =>
                {
                    // Rank of each live slot among the live slots, listed in the order the LIST sections hold the rows.
                    var rank = new int[_slotCount];
                    int next = 0;
                    for (int slot = 0; slot < _slotCount; slot++) rank[slot] = _slotIds[slot] >= 0 ? next++ : -1;
                    b.Write(next);
                    for (int l = 0; l < NList; l++)
                        for (int p = 0; p < _lists[l].Count; p++)
                        {
                            int slot = _lists[l].Slots[p];
                            if (slot < 0 || (Spill && !IsFirstCopy(l, p, slot))) continue;
                            b.Write(rank[slot]);
                        }
                });
            }
            if (Spill)
            {
                w.Section("SPIL", b =>
                {
                    b.Write(_idToSpill.Count);
                    for (int l = 0; l < NList; l++)
                    {
                        var list = _lists[l];
                        for (int p = 0; p < list.Count; p++)
                        {
                            int slot = list.Slots[p];
                            if (slot < 0 || IsFirstCopy(l, p, slot)) continue;
                            b.Write(l);
                            b.Write(_slotIds[slot]);
                            if (Codec == ListCodec.RaBitQ)
                            {
                                list.ReadCode(p, code);
                                b.Write(code);
                            }
                        }
                    }
                });
            }
            if (_prefix8 is { } p8)
            {
                w.Section("PR8R", b =>
                {
                    b.Write(Count);
                    for (int l = 0; l < NList; l++) // the LIST sections' rows, in their order: row i becomes slot i on load
                        for (int p = 0; p < _lists[l].Count; p++)
                        {
                            int slot = _lists[l].Slots[p];
                            if (slot < 0 || (Spill && !IsFirstCopy(l, p, slot))) continue;
                            b.Write(p8.Code(slot));
                            b.Write(p8.Norm2(slot));
                        }
                });
            }
            if (ComputeProfile is { } profile)
                w.Section("PROF", profile.Write);
            if (ComputeProfile is { TunedRecall: double tuned })
                w.Section("tune", b => b.Write(tuned)); // optional (lowercase): older readers skip it
        });
    }

    /// <summary>Whether the LIST sections hold the live rows in slot order (then a loaded index numbers them alike without ORDR).</summary>
    private bool SlotsInFileOrder()
    {
        int last = -1;
        for (int l = 0; l < NList; l++)
            for (int p = 0; p < _lists[l].Count; p++)
            {
                int slot = _lists[l].Slots[p];
                if (slot < 0 || (Spill && !IsFirstCopy(l, p, slot))) continue;
                if (slot < last) return false;
                last = slot;
            }
        return true;
    }

    /// <summary>Whether row <paramref name="pos"/> of list <paramref name="list"/> (live, at <paramref name="slot"/>) is its vector's first copy.</summary>
    private bool IsFirstCopy(int list, int pos, int slot) => _idToLoc[_slotIds[slot]] == (((long)list << 32) | (uint)pos);

    /// <summary>Live first copies in list <paramref name="l"/> (every live row without Spill).</summary>
    private int FirstCopies(int l)
    {
        var list = _lists[l];
        int n = 0;
        for (int p = 0; p < list.Count; p++)
            if (list.Slots[p] >= 0 && (!Spill || IsFirstCopy(l, p, list.Slots[p]))) n++;
        return n;
    }

    /// <summary>A code (one byte per sub-quantizer) as stored in files: as is for 8-bit codes, two per byte for 4-bit.</summary>
    private void PackCode(ReadOnlySpan<byte> code, Span<byte> packed)
    {
        if (!FastScan)
        {
            code[.._codeWidth].CopyTo(packed);
            return;
        }
        for (int p = 0; p < SubQuantizers / 2; p++) packed[p] = (byte)(code[2 * p] | (code[2 * p + 1] << 4));
    }

    /// <summary>Inverse of <see cref="PackCode"/>.</summary>
    private void UnpackCode(ReadOnlySpan<byte> packed, Span<byte> code)
    {
        if (!FastScan)
        {
            packed[.._codeWidth].CopyTo(code);
            return;
        }
        for (int p = 0; p < SubQuantizers / 2; p++)
        {
            code[2 * p] = (byte)(packed[p] & 0x0F);
            code[2 * p + 1] = (byte)(packed[p] >> 4);
        }
    }

    private static void WriteRotation(BinaryWriter b, RotationTransform rotation)
    {
        foreach (float v in rotation.MatrixRowMajor) b.Write(v);
        foreach (double e in rotation.Eigenvalues) b.Write(e);
    }

    /// <summary>
    /// Loads an index saved by <see cref="Save"/> (any 1.x version) with resident vectors. A truncated or corrupted
    /// file, a failed checksum or an out-of-range length raises <see cref="IndexFileException"/> naming the file and
    /// offset; so does a file saved without vectors (load it with a source).
    /// </summary>
    public static IvfIndex Load(string path) => Load(path, null);

    /// <summary>
    /// Loads an index saved by <see cref="Save"/>. With <paramref name="source"/>, the index reads its full vectors from
    /// it (as after <see cref="UseExternalVectors"/>): vectors stored in the file, if any, are skipped. Without one, the
    /// file must hold the vectors.
    /// </summary>
    public static IvfIndex Load(string path, IVectorSource? source)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Index files are little-endian; this machine is not.");
        using var file = new SectionReader(path, Magic, FormatMajor, FormatMinor);
        (int D, Metric Metric, int NList, int Dc, int Dq, int M, long NextId, IndexSpec Spec)? meta = null;
        RotationTransform? rotation = null, opq = null;
        ProductQuantizer? pq = null;
        float[]? coarse = null, resid = null;
        ScalarQuantizer8? prefix8 = null, scanSq = null;
        RaBitQuantizer? rq = null;
        bool prefixRows = false, spillSeen = false;
        int[]? order = null;
        IvfIndex? index = null;
        var listsSeen = new HashSet<int>();
        bool fileExternal = false;
        ComputeProfile? profile = null;
        double? tunedRecall = null;

        while (file.Next() is var (tag, payload, offset))
        {
            var r = new PayloadReader(file, tag, payload, offset);
            switch (tag)
            {
                case "META":
                    {
                        var (D, metric, nlist, dc) = ReadMetaHead(ref r, file, offset);
                        int dq = r.Int32In("code dim", 1, D);
                        int m = r.Int32In("code bytes", 1, 4 * dq + RaBitQuantizer.Factors * sizeof(float));
                        long next = r.Int64("next id");
                        string specText = r.String("spec", 4096);
                        var spec = IndexSpec.ParseStored(specText, D, path, offset);
                        // PQ: m sub-quantizers on the PqDim prefix. SQ8 / float scan codes: the d_s prefix, d_s or 4·d_s bytes.
                        bool codesAgree = spec.IsPq
                            ? (spec.PqDim ?? D) == dq && spec.PqBytes == m
                            : spec.IsRaBitQ
                            ? (spec.RqDim ?? D) == dq && (m == dq + RaBitQuantizer.Factors * sizeof(float) || m == dq + V18RaBitQFactorBytes)
                            : m == (spec.Sq8 ? dq : 4 * dq); // scan codes may hold more dims than the spec scans (1.10)
                        if (spec.NList != nlist || (spec.CoarseDim ?? D) != dc || !codesAgree)
                            throw file.Fail(offset, $"stored spec \"{spec}\" disagrees with nlist {nlist} / coarse dim {dc} / {m} code bytes on {dq} dims.");
                        meta = (D, metric, nlist, dc, dq, m, next, spec);
                        break;
                    }
                case "XVEC":
                    {
                        if (meta is null) throw file.Fail(offset, "XVEC section before META.");
                        if (index is not null) throw file.Fail(offset, "XVEC section after the lists.");
                        if (source is null)
                            throw file.Fail(offset, "the index was saved without its full vectors: load it with the vector source that holds them.");
                        fileExternal = true;
                        break;
                    }
                case "ROTN":
                    {
                        var m = meta ?? throw file.Fail(offset, "ROTN section before META.");
                        rotation = ReadRotation(ref r, file, path, offset, m.D, "rotation");
                        break;
                    }
                case "OPQR":
                    {
                        var m = meta ?? throw file.Fail(offset, "OPQR section before META.");
                        opq = ReadRotation(ref r, file, path, offset, m.Dq, "OPQ rotation");
                        break;
                    }
                case "PQCB":
                    {
                        var m = meta ?? throw file.Fail(offset, "PQCB section before META.");
                        int ksub = 1 << m.Spec.PqBits;
                        r.EnsureFits((long)m.Dq * ksub, 4, "codebooks");
                        var cb = new float[m.Dq * ksub];
                        r.FiniteFloats(cb, "codebooks");
                        try
                        {
                            pq = ProductQuantizer.FromCodebooks(m.Dq, m.M, cb, m.Spec.PqBits);
                        }
                        catch (ArgumentException e)
                        {
                            throw new IndexFileException(path, offset, $"codebooks are invalid: {e.Message}", e);
                        }
                        break;
                    }
                case "SCNQ":
                    {
                        var m = meta ?? throw file.Fail(offset, "SCNQ section before META.");
                        if (index is not null) throw file.Fail(offset, "SCNQ section after the lists.");
                        if (!m.Spec.Sq8 || m.Spec.IsPq) throw file.Fail(offset, "SCNQ section but the spec has no SQ8 scan codes.");
                        scanSq = ScalarQuantizer8.Read(ref r, path, offset, m.Dq, "scan code ranges");
                        break;
                    }
                case "RBQH":
                    {
                        var m = meta ?? throw file.Fail(offset, "RBQH section before META.");
                        if (index is not null) throw file.Fail(offset, "RBQH section after the lists.");
                        if (rq is not null) throw file.Fail(offset, "a second RaBitQ section (RBQC / RBQH).");
                        if (!m.Spec.IsRaBitQ) throw file.Fail(offset, "RBQH section but the spec has no RQ codes.");
                        int bits = r.Int32In("RaBitQ bits", 1, 8);
                        if (bits != m.Spec.RqBits) throw file.Fail(offset, $"RaBitQ bits {bits} disagree with the spec's {m.Spec.RqBits}.");
                        float eps = r.Single("RaBitQ ε0");
                        if (!(eps > 0) || !float.IsFinite(eps)) throw file.Fail(offset, $"RaBitQ ε0 {eps} is not a positive finite number.");
                        if (m.Dq < 2) throw file.Fail(offset, $"RaBitQ code dim {m.Dq} is below 2.");
                        int rounds = r.Int32In("Hadamard rotation rounds", 1, HadamardRotation.MaxRounds);
                        int signs = HadamardRotation.SignCount(m.Dq, rounds);
                        r.EnsureFits(signs + 4L * m.NList * m.Dq, 1, "Hadamard rotation signs and RaBitQ centres");
                        var negative = new byte[signs];
                        r.Bytes(negative, "Hadamard rotation signs");
                        for (int i = 0; i < negative.Length; i++)
                            if (negative[i] > 1) throw file.Fail(offset, $"Hadamard rotation sign {i} is {negative[i]}; signs must be 0 or 1.");
                        var centers = new float[(long)m.NList * m.Dq];
                        r.FiniteFloats(centers, "RaBitQ centres");
                        try
                        {
                            rq = RaBitQuantizer.FromParts(m.Dq, bits, eps, HadamardRotation.FromSigns(m.Dq, rounds, negative), centers);
                        }
                        catch (ArgumentException e)
                        {
                            throw new IndexFileException(path, offset, $"RaBitQ parts are invalid: {e.Message}", e);
                        }
                        break;
                    }
                case "RBQC":
                    {
                        var m = meta ?? throw file.Fail(offset, "RBQC section before META.");
                        if (index is not null) throw file.Fail(offset, "RBQC section after the lists.");
                        if (rq is not null) throw file.Fail(offset, "a second RaBitQ section (RBQC / RBQH).");
                        if (!m.Spec.IsRaBitQ) throw file.Fail(offset, "RBQC section but the spec has no RQ codes.");
                        int bits = r.Int32In("RaBitQ bits", 1, 8);
                        if (bits != m.Spec.RqBits) throw file.Fail(offset, $"RaBitQ bits {bits} disagree with the spec's {m.Spec.RqBits}.");
                        float eps = r.Single("RaBitQ ε0");
                        if (!(eps > 0) || !float.IsFinite(eps)) throw file.Fail(offset, $"RaBitQ ε0 {eps} is not a positive finite number.");
                        r.EnsureFits((long)m.Dq * m.Dq + (long)m.NList * m.Dq, 4, "RaBitQ transform and centres");
                        var matrix = new float[m.Dq * m.Dq];
                        r.FiniteFloats(matrix, "RaBitQ transform");
                        var centers = new float[(long)m.NList * m.Dq];
                        r.FiniteFloats(centers, "RaBitQ centres");
                        var ones = new double[m.Dq];
                        Array.Fill(ones, 1.0);
                        try
                        {
                            rq = RaBitQuantizer.FromParts(m.Dq, bits, eps, RotationTransform.FromMatrix(m.Dq, matrix, ones), centers);
                        }
                        catch (ArgumentException e)
                        {
                            throw new IndexFileException(path, offset, $"RaBitQ parts are invalid: {e.Message}", e);
                        }
                        break;
                    }
                case "CENT":
                    {
                        var m = meta ?? throw file.Fail(offset, "CENT section before META.");
                        long count = m.NList == 1 ? m.Dc : (long)m.NList * m.Dc;
                        r.EnsureFits(count, 4, "centroids");
                        coarse = new float[count];
                        r.FiniteFloats(coarse, "centroids");
                        break;
                    }
                case "RESC":
                    {
                        var m = meta ?? throw file.Fail(offset, "RESC section before META.");
                        r.EnsureFits((long)m.NList * m.Dq, 4, "residual centroids");
                        resid = new float[(long)m.NList * m.Dq];
                        r.FiniteFloats(resid, "residual centroids");
                        break;
                    }
                case "PR8Q":
                    {
                        var m = meta ?? throw file.Fail(offset, "PR8Q section before META.");
                        if (index is not null) throw file.Fail(offset, "PR8Q section after the lists.");
                        int d8 = m.Spec.Prefix8Dim ?? throw file.Fail(offset, "PR8Q section but the spec has no Prefix8.");
                        prefix8 = ScalarQuantizer8.Read(ref r, path, offset, d8, "8-bit prefix ranges");
                        break;
                    }
                case "PR8R":
                    {
                        var m = meta ?? throw file.Fail(offset, "PR8R section before META.");
                        index ??= NewLoadedChecked(file, offset, m, rotation, coarse, opq, pq, resid, prefix8, scanSq, rq, source);
                        var p8 = index._prefix8 ?? throw file.Fail(offset, "PR8R section but the spec has no Prefix8.");
                        if (prefixRows) throw file.Fail(offset, "PR8R appears twice.");
                        int count = r.Int32In("8-bit prefix rows", 0, int.MaxValue);
                        if (count != index._slotCount)
                            throw file.Fail(offset, $"8-bit prefix rows ({count}) do not match the lists' rows ({index._slotCount}).");
                        r.EnsureFits(count, p8.Dim + 4L, "8-bit prefix rows");
                        var code = new byte[p8.Dim];
                        for (int i = 0; i < count; i++)
                        {
                            r.Bytes(code, "8-bit prefix code");
                            float norm2 = r.Single("8-bit prefix norm");
                            if (!(norm2 >= 0) || !float.IsFinite(norm2)) throw file.Fail(offset, $"8-bit prefix row {i}: squared norm {norm2} is not a finite non-negative value.");
                            p8.AppendStored(code, norm2);
                        }
                        prefixRows = true;
                        break;
                    }
                case "ORDR":
                    {
                        var m = meta ?? throw file.Fail(offset, "ORDR section before META.");
                        index ??= NewLoadedChecked(file, offset, m, rotation, coarse, opq, pq, resid, prefix8, scanSq, rq, source);
                        if (order is not null) throw file.Fail(offset, "ORDR appears twice.");
                        int count = r.Int32In("ordered rows", 0, int.MaxValue);
                        if (count != index._slotCount)
                            throw file.Fail(offset, $"ORDR lists {count} rows; the lists hold {index._slotCount}.");
                        r.EnsureFits(count, 4, "row order");
                        order = new int[count];
                        r.Ints(order, "row order");
                        var seen = new bool[count];
                        foreach (int rank in order)
                        {
                            if ((uint)rank >= (uint)count || seen[rank]) throw file.Fail(offset, $"ORDR is not a permutation (rank {rank}).");
                            seen[rank] = true;
                        }
                        break;
                    }
                case "SPIL":
                    {
                        var m = meta ?? throw file.Fail(offset, "SPIL section before META.");
                        index ??= NewLoadedChecked(file, offset, m, rotation, coarse, opq, pq, resid, prefix8, scanSq, rq, source);
                        if (!index.Spill) throw file.Fail(offset, "SPIL section but the spec has no Spill.");
                        if (spillSeen) throw file.Fail(offset, "SPIL appears twice.");
                        spillSeen = true;
                        int count = r.Int32In("second copies", 0, index.Count);
                        r.EnsureFits(count, 12 + (index.Codec == ListCodec.RaBitQ ? m.M : 0), "second copies");
                        var code = new byte[m.M];
                        var converted = new byte[index._codeWidth];
                        for (int i = 0; i < count; i++)
                        {
                            int l = r.Int32In("second copy's list", 0, m.NList - 1);
                            long id = r.Int64("second copy's id");
                            if (!index._idToLoc.TryGetValue(id, out long loc) || index._idToSpill.ContainsKey(id) || (int)(loc >> 32) == l)
                                throw file.Fail(offset, $"second copy {i}: id {id} is unknown, copied twice, or in its own first list.");
                            var first = index._lists[(int)(loc >> 32)];
                            first.ReadCode((int)(uint)loc, code);
                            if (index.Codec == ListCodec.RaBitQ) r.Bytes(code, "second copy's code"); // its own residual code
                            index.AppendSpill(l, index.FromStoredRaBitQ(code, l, converted), first.Slots[(int)(uint)loc], id);
                        }
                        break;
                    }
                case "LIST":
                    {
                        var m = meta ?? throw file.Fail(offset, "LIST section before META.");
                        if (prefixRows) throw file.Fail(offset, "LIST section after PR8R.");
                        if (spillSeen) throw file.Fail(offset, "LIST section after SPIL.");
                        index ??= NewLoadedChecked(file, offset, m, rotation, coarse, opq, pq, resid, prefix8, scanSq, rq, source);
                        int l = r.Int32In("list number", 0, m.NList - 1);
                        if (!listsSeen.Add(l)) throw file.Fail(offset, $"list {l} appears twice.");
                        int count = r.Int32In("list size", 0, int.MaxValue);
                        int codeBytes = m.Spec.IsPq && m.Spec.PqBits == 4 ? m.M / 2 : m.M;
                        r.EnsureFits(count, 8 + codeBytes + (fileExternal ? 0 : 4L * m.D), $"list {l}'s {count} rows");
                        var row = new float[m.D];
                        var packed = new byte[codeBytes];
                        var code = new byte[m.M];
                        var converted = new byte[index._codeWidth];
                        for (int p = 0; p < count; p++)
                        {
                            long id = r.Int64("id");
                            r.Bytes(packed, "code");
                            index.UnpackCode(packed, code);
                            if (!fileExternal) r.Floats(row, "vector");
                            if (id < 0 || index._idToLoc.ContainsKey(id))
                                throw file.Fail(offset, $"list {l} row {p}: id {id} is negative or duplicated.");
                            index.Append(l, row, index.FromStoredRaBitQ(code, l, converted), id, encodePrefix: false, rowKnown: !fileExternal);
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
        if (index is null)
        {
            var m = meta ?? throw file.Fail(-1, "no META section.");
            index = NewLoadedChecked(file, -1, m, rotation, coarse, opq, pq, resid, prefix8, scanSq, rq, source);
        }
        if (order is not null)
        {
            if (order.Length != index._slotCount) throw file.Fail(-1, $"ORDR lists {order.Length} rows; the lists hold {index._slotCount}.");
            index.RenumberSlots(order);
        }
        if (index.Spill && !spillSeen && index.Count > 0)
            throw file.Fail(-1, "the spec has Spill but the file has no SPIL section (second copies).");
        if (index._prefix8 is { } loaded && loaded.Count != index._slotCount)
            throw file.Fail(-1, $"the 8-bit prefix copy (PR8R) is missing: {loaded.Count} of {index._slotCount} rows.");
        if (tunedRecall is not null && profile is null) throw file.Fail(-1, "section \"tune\" without a PROF section (a tuned recall needs the frontier).");
        if (profile is not null)
        {
            foreach (var point in profile.Points)
                if ((index.Codec is ListCodec.Pq or ListCodec.RaBitQ ? point.Params.ScanDim != index.CodeDim : point.Params.ScanDim > index.Dimension)
                    || point.Params.CoarseDim > index.Dimension)
                    throw file.Fail(-1, $"section \"PROF\": a point scans at {point.Params.ScanDim} dims or ranks centroids at {point.Params.CoarseDim}; this index codes {index.CodeDim} dims with {index.CoarseDim}-dim centroids.");
            profile.TunedRecall = tunedRecall;
            index.ComputeProfile = profile;
        }
        return index;
    }

    /// <summary>The empty index the sections read so far describe, once they agree with the spec.</summary>
    /// <summary>The fields every META section starts with, in the pipeline's files and the IVF files before them: D, metric, nlist, d_c.</summary>
    private static (int D, Metric Metric, int NList, int Dc) ReadMetaHead(ref PayloadReader r, SectionReader file, long offset)
    {
        int D = r.Int32In("dimension", 1, MaxDimension);
        int metric = r.Byte("metric");
        if (!Enum.IsDefined((Metric)metric)) throw file.Fail(offset + 4, $"unknown metric code {metric}.");
        int nlist = r.Int32In("nlist", 1, MaxNList);
        int dc = r.Int32In("coarse dim", 1, D);
        return (D, (Metric)metric, nlist, dc);
    }

    /// <summary>
    /// The sections every file of the pipeline (and the IVF files before it) may carry after its lists: "tune" (the
    /// tuned recall target) and "PROF" (the compute profile, which needs the META section's dimension and list count).
    /// </summary>
    private static void ReadTuning(string tag, ref PayloadReader r, SectionReader file, long offset, (int D, int NList)? meta,
        ref double? tunedRecall, ref ComputeProfile? profile)
    {
        if (tag == "tune")
        {
            double t = r.Double("tuned recall");
            if (!(t > 0 && t <= 1)) throw file.Fail(offset, $"section \"tune\": tuned recall {t} is not in (0, 1].");
            tunedRecall = t;
            return;
        }
        var m = meta ?? throw file.Fail(offset, "PROF section before META.");
        profile = ComputeProfile.Read(ref r, file, offset, m.D, m.NList);
    }

    private static IvfIndex NewLoadedChecked(SectionReader file, long offset,
        (int D, Metric Metric, int NList, int Dc, int Dq, int M, long NextId, IndexSpec Spec) m, RotationTransform? rotation, float[]? coarse,
        RotationTransform? opq, ProductQuantizer? pq, float[]? resid, ScalarQuantizer8? prefix8, ScalarQuantizer8? scanSq, RaBitQuantizer? rq,
        IVectorSource? source)
    {
        if (m.Spec.IsRaBitQ != (rq is not null)) throw file.Fail(offset, "the spec's RQ and the RBQC / RBQH section disagree (it must come before the lists).");
        if (coarse is null) throw file.Fail(offset, "the CENT section must come before the lists.");
        if (m.Spec.IsPq && pq is null) throw file.Fail(offset, "the PQCB section must come before the lists.");
        if (!m.Spec.IsPq && pq is not null) throw file.Fail(offset, "a PQCB section but the spec has no PQ codes.");
        if (!m.Spec.IsPq && m.Spec.Sq8 != (scanSq is not null)) throw file.Fail(offset, "the spec's SQ8 and the SCNQ section disagree.");
        if (m.Spec.Rotate != (rotation is not null)) throw file.Fail(offset, "the spec's Rot and the ROTN section disagree.");
        if (m.Spec.Opq != (opq is not null)) throw file.Fail(offset, "the spec's OPQ and the OPQR section disagree.");
        if (m.Spec.Residual != (resid is not null)) throw file.Fail(offset, "the spec's Resid and the RESC section disagree.");
        if ((m.Spec.Prefix8Dim is not null) != (prefix8 is not null)) throw file.Fail(offset, "the spec's Prefix8 and the PR8Q section disagree.");
        int? store = m.Spec.IsPq || m.Spec.IsRaBitQ ? null : m.Dq;
        var index = new IvfIndex(m.D, m.Metric, m.Spec, rotation, coarse, opq, pq, resid, prefix8, scanSq, rq, store) { _nextAutoId = m.NextId };
        if (source is not null) index.UseExternalVectors(source);
        return index;
    }

    private static RotationTransform ReadRotation(ref PayloadReader r, SectionReader file, string path, long offset, int d, string what)
    {
        r.EnsureFits((long)d * d, 4, what);
        var matrix = new float[d * d];
        r.FiniteFloats(matrix, what);
        var energy = new double[d];
        r.Doubles(energy, what + " energies");
        foreach (float v in matrix)
            if (!float.IsFinite(v)) throw file.Fail(offset, $"{what} contains NaN or infinite values.");
        try
        {
            return RotationTransform.FromMatrix(d, matrix, energy);
        }
        catch (ArgumentException e)
        {
            throw new IndexFileException(path, offset, $"{what} is invalid: {e.Message}", e);
        }
    }
}
