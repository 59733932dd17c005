using System.Globalization;
using System.Text;

namespace Adanns.Engine.Indexes;

/// <summary>One rerank stage: rescore the candidates at <paramref name="Dim"/> dims and keep the best <paramref name="Keep"/> (null = k).</summary>
public readonly record struct RerankStage(int Dim, int? Keep);

/// <summary>
/// A whole search pipeline as a short string, e.g. <c>"Rot,IVF1024@64,Scan32,Shortlist400,Rerank384"</c>.
/// </summary>
/// <remarks>
/// Grammar (components separated by commas, case-insensitive, in this order):
/// <list type="bullet">
/// <item><c>Rot</c> — optional: learn an energy-ordering rotation (gives non-Matryoshka embeddings useful prefixes).</item>
/// <item><c>IVF{nlist}</c> or <c>IVF{nlist}@{d_c}</c> — k-means with nlist lists on the d_c-dim prefix (default d_c = D).</item>
/// <item><c>Scan{d_s}</c> — dims used to scan the probed lists (default d_c).</item>
/// <item><c>SQ8</c> — keep the scan store as 8-bit scalar-quantized codes (a quarter of the bytes to stream);
/// reranking still uses exact float vectors.</item>
/// <item><c>PQ{m}</c>, <c>PQ{m}@{d}</c>, <c>OPQ{m}</c>, <c>OPQ{m}@{d}</c> — product-quantized codes of m bytes on the
/// d-dim prefix (default D; d % m == 0), with a learned OPQ rotation for <c>OPQ</c>. <c>PQ{m}x4</c> (also
/// <c>OPQ{m}x4@{d}</c>): m sub-quantizers of 16 centroids, m/2 bytes per code, scanned with the in-register 4-bit
/// fast-scan kernel (m even). Such specs build a <see cref="IvfIndex"/>; the IVF component is then optional (without
/// it the codes are scanned flat).</item>
/// <item><c>RQ{b}</c>, <c>RQ{b}@{d}</c> — RaBitQ codes (b = 1) or Extended RaBitQ codes (b = 2–8 bits per dim) of the
/// d-dim prefix (default D), always residual to the list's centre, with a per-code error bound: a first rerank stage
/// at exactly d dims is then bound-driven (the shortlist is an upper limit; see <see cref="IvfIndex"/>). Takes the
/// place of a PQ component; no SQ8, Scan or Resid.</item>
/// <item><c>Resid</c> — PQ codes encode the residual to the list centroid instead of the vector.</item>
/// <item><c>Spill</c> — indexes with IVF (codes not residual; any list codec): every vector is also stored in a second list, chosen
/// as SOAR does (Sun et al., NeurIPS 2023) so that the two lists' residuals point in different directions; a query
/// then finds most of its neighbours in half the probes or fewer. Twice the codes; the full vector is stored once.</item>
/// <item><c>Prefix8@{d}</c> — any list codec: keep an 8-bit scalar-quantized copy of every vector's d-dim prefix in
/// memory; a first rerank stage at exactly d dims (followed by at least one more stage) reads it instead of the float
/// vectors — a quarter of the bytes, and no external read for candidates it drops.</item>
/// <item><c>NProbe{n}</c> — lists probed per query by default (default 8, capped at nlist).</item>
/// <item><c>Shortlist{n}</c> — candidates kept by the scan for reranking (default 100, at least k).</item>
/// <item><c>Rerank{d}</c> or <c>Rerank{d}/{keep}</c> — a rerank stage at d dims keeping <c>keep</c> candidates
/// (the last stage keeps k). Several stages make an MRL funnel, e.g. <c>Rerank96/100,Rerank384</c>.</item>
/// </list>
/// Rigid IVF is <c>"IVF1024"</c> (d_c = d_s = D, no rerank); AdANNS-IVF-OPQ is e.g.
/// <c>"Rot,IVF1024@64,OPQ32@96,NProbe32,Shortlist200,Rerank384"</c>. <see cref="ToString"/> gives the canonical form,
/// which parses back to an equal spec.
/// </remarks>
public sealed record IndexSpec
{
    /// <summary>Default lists probed when neither the spec nor the query says.</summary>
    public const int DefaultNProbe = 8;

    /// <summary>Default scan shortlist when neither the spec nor the query says.</summary>
    public const int DefaultShortlist = 100;

    /// <summary>Learn and apply an energy-ordering rotation.</summary>
    public bool Rotate { get; init; }

    /// <summary>Number of inverted lists (k-means centroids).</summary>
    public int NList { get; init; }

    /// <summary>Clustering / probing dim d_c; null = D.</summary>
    public int? CoarseDim { get; init; }

    /// <summary>In-list scan dim d_s; null = d_c.</summary>
    public int? ScanDim { get; init; }

    /// <summary>Scan store quantized to 8 bits per value.</summary>
    public bool Sq8 { get; init; }

    /// <summary>Bytes per PQ code (sub-quantizers m); null = no product quantization.</summary>
    public int? PqBytes { get; init; }

    /// <summary>Bits per PQ sub-quantizer code: 8 (default) or 4 (fast scan, <c>PQ{m}x4</c>).</summary>
    public int PqBits { get; init; } = 8;

    /// <summary>Prefix dim the PQ codes are learned on; null = D.</summary>
    public int? PqDim { get; init; }

    /// <summary>Learn an OPQ rotation in front of the PQ codec.</summary>
    public bool Opq { get; init; }

    /// <summary>PQ codes encode the residual to the list centroid.</summary>
    public bool Residual { get; init; }

    /// <summary>Each vector also sits in a second, SOAR-chosen list (<c>Spill</c>).</summary>
    public bool Spill { get; init; }

    /// <summary>Dim of the 8-bit prefix copy for a first rerank stage (<c>Prefix8@{d}</c>); null = none.</summary>
    public int? Prefix8Dim { get; init; }

    /// <summary>Whether this spec has product-quantized list codes (PQ/OPQ).</summary>
    public bool IsPq => PqBytes is not null;

    /// <summary>Bits per dim of RaBitQ codes (<c>RQ{b}</c>, 1–8); null = no RaBitQ codes.</summary>
    public int? RqBits { get; init; }

    /// <summary>Prefix dim the RaBitQ codes hold; null = D.</summary>
    public int? RqDim { get; init; }

    /// <summary>Whether this spec has RaBitQ list codes (<c>RQ{b}[@{d}]</c>).</summary>
    public bool IsRaBitQ => RqBits is not null;

    /// <summary>
    /// Whether this spec goes beyond plain IVF (float or SQ8 lists without Spill or Prefix8): PQ/OPQ or RaBitQ codes,
    /// <c>Spill</c> or <c>Prefix8</c>. Every spec is built by the one pipeline (<see cref="IvfIndex"/>); a plain spec keeps
    /// IVF's defaults where they differ (training sample, the profile's scan-dim grid).
    /// </summary>
    public bool IsCodecPipeline => IsPq || IsRaBitQ || Spill || Prefix8Dim is not null;

    /// <summary>Default nprobe; null = <see cref="DefaultNProbe"/>.</summary>
    public int? NProbe { get; init; }

    /// <summary>Default shortlist; null = <see cref="DefaultShortlist"/>.</summary>
    public int? Shortlist { get; init; }

    /// <summary>Rerank stages after the scan, in order; empty = results ranked at d_s.</summary>
    public IReadOnlyList<RerankStage> Rerank { get; init; } = [];

    /// <summary>Checks the spec against a dimension D; throws with a message that quotes the spec.</summary>
    public void Validate(int dimension)
    {
        string s = ToString();
        void Check(bool ok, string what)
        {
            if (!ok) throw new FormatException($"Index spec \"{s}\": {what}");
        }
        Check(NList >= 1, $"nlist must be at least 1 (got {NList}).");
        Check(CoarseDim is null || (CoarseDim >= 1 && CoarseDim <= dimension), $"coarse dim {CoarseDim} must be in [1, {dimension}].");
        Check(ScanDim is null || (ScanDim >= 1 && ScanDim <= dimension), $"scan dim {ScanDim} must be in [1, {dimension}].");
        Check(NProbe is null || NProbe >= 1, $"nprobe must be at least 1 (got {NProbe}).");
        Check(Shortlist is null || Shortlist >= 1, $"shortlist must be at least 1 (got {Shortlist}).");
        if (PqBytes is { } m)
        {
            int d = PqDim ?? dimension;
            Check(PqDim is null || (PqDim >= 1 && PqDim <= dimension), $"PQ dim {PqDim} must be in [1, {dimension}].");
            Check(m >= 1 && d % m == 0, $"PQ needs the prefix dim ({d}) divisible by the sub-quantizer count ({m}).");
            Check(PqBits is 8 or 4, $"PQ codes are 8 or 4 bits per sub-quantizer (got {PqBits}).");
            Check(PqBits == 8 || (m % 2 == 0 && m <= 256), $"4-bit PQ packs two codes per byte: the sub-quantizer count must be even and at most 256 (got {m}).");
            Check(!Spill || !Residual, "Spill stores one code in two lists, so the codes cannot be residuals to a list: drop Resid.");
            Check(!Sq8 && ScanDim is null, "PQ codes fix the scan: SQ8 and Scan do not combine with PQ/OPQ.");
        }
        else
        {
            Check(!Residual, "Resid needs a PQ or OPQ component.");
        }
        if (RqBits is { } rb)
        {
            Check(rb is >= 1 and <= 8, $"RaBitQ codes have 1 to 8 bits per dim (got {rb}).");
            Check(RqDim is null || (RqDim >= 2 && RqDim <= dimension), $"RaBitQ dim {RqDim} must be in [2, {dimension}].");
            Check(dimension >= 2, "RaBitQ codes need at least 2 dims.");
            Check(!IsPq, "RQ and PQ/OPQ are alternative list codecs: use one.");
            Check(!Sq8 && ScanDim is null, "RaBitQ codes fix the scan: SQ8 and Scan do not combine with RQ.");
        }
        Check(!Spill || NList > 1, "Spill needs an IVF component with at least 2 lists.");
        Check(Prefix8Dim is null || (Prefix8Dim >= 1 && Prefix8Dim <= dimension), $"Prefix8 dim {Prefix8Dim} must be in [1, {dimension}].");
        foreach (var st in Rerank)
        {
            Check(st.Dim >= 1 && st.Dim <= dimension, $"rerank dim {st.Dim} must be in [1, {dimension}].");
            Check(st.Keep is null || st.Keep >= 1, $"rerank keep {st.Keep} must be at least 1.");
        }
    }

    /// <summary>Parses a factory string; errors quote the whole string and name the bad component.</summary>
    public static IndexSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        FormatException Error(string what) => new($"Index spec \"{text}\": {what}");
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length == 0 || parts.All(p => p.Length == 0))
            throw Error("empty; expected e.g. \"IVF1024@64,Scan128,Rerank384\".");

        bool rotate = false, sq8 = false, opq = false, resid = false, spill = false;
        int? nlist = null, dc = null, ds = null, nprobe = null, shortlist = null, pqBytes = null, pqDim = null, prefix8 = null, rqBits = null, rqDim = null;
        int pqBits = 8;
        var stages = new List<RerankStage>();
        int stage = -1; // enforces the documented order
        for (int i = 0; i < parts.Length; i++)
        {
            string p = parts[i];
            if (p.Length == 0) throw Error($"component {i + 1} is empty.");
            string lower = p.ToLowerInvariant();
            int order;
            if (lower == "rot")
            {
                order = 0;
                rotate = true;
            }
            else if (lower.StartsWith("ivf", StringComparison.Ordinal))
            {
                order = 1;
                var body = p[3..];
                int at = body.IndexOf('@');
                nlist = Number(at < 0 ? body : body[..at], p);
                if (at >= 0) dc = Number(body[(at + 1)..], p);
            }
            else if (lower.StartsWith("scan", StringComparison.Ordinal)) { order = 2; ds = Number(p[4..], p); }
            else if (lower == "sq8") { order = 3; sq8 = true; }
            else if (lower.StartsWith("pq", StringComparison.Ordinal) || lower.StartsWith("opq", StringComparison.Ordinal))
            {
                order = 4;
                opq = lower[0] == 'o';
                var body = p[(opq ? 3 : 2)..];
                int at = body.IndexOf('@');
                var head = at < 0 ? body : body[..at];
                int x = head.IndexOf('x', StringComparison.OrdinalIgnoreCase);
                pqBytes = Number(x < 0 ? head : head[..x], p);
                if (x >= 0)
                {
                    pqBits = Number(head[(x + 1)..], p);
                    if (pqBits is not (4 or 8)) throw Error($"\"{p}\": PQ codes are 8 or 4 bits (x8 or x4), not {pqBits}.");
                }
                if (at >= 0) pqDim = Number(body[(at + 1)..], p);
            }
            else if (lower.StartsWith("rq", StringComparison.Ordinal))
            {
                order = 4;
                var body = p[2..];
                int at = body.IndexOf('@');
                rqBits = Number(at < 0 ? body : body[..at], p);
                if (rqBits > 8) throw Error($"\"{p}\": RaBitQ codes have 1 to 8 bits per dim, not {rqBits}.");
                if (at >= 0) rqDim = Number(body[(at + 1)..], p);
            }
            else if (lower == "resid") { order = 5; resid = true; }
            else if (lower == "spill") { order = 6; spill = true; }
            else if (lower.StartsWith("prefix8@", StringComparison.Ordinal)) { order = 7; prefix8 = Number(p[8..], p); }
            else if (lower.StartsWith("nprobe", StringComparison.Ordinal)) { order = 8; nprobe = Number(p[6..], p); }
            else if (lower.StartsWith("shortlist", StringComparison.Ordinal)) { order = 9; shortlist = Number(p[9..], p); }
            else if (lower.StartsWith("rerank", StringComparison.Ordinal))
            {
                order = 10;
                var body = p[6..];
                int slash = body.IndexOf('/');
                int d = Number(slash < 0 ? body : body[..slash], p);
                int? keep = slash < 0 ? null : Number(body[(slash + 1)..], p);
                stages.Add(new RerankStage(d, keep));
            }
            else
            {
                throw Error($"unknown component \"{p}\" (expected Rot, IVF<nlist>[@<dim>], Scan<dim>, SQ8, [O]PQ<m>[x4][@<dim>], RQ<bits>[@<dim>], Resid, Spill, Prefix8@<dim>, NProbe<n>, Shortlist<n>, Rerank<dim>[/<keep>]).");
            }
            if (order < stage || (order == stage && order != 10))
                throw Error($"component \"{p}\" is out of order or repeated (order: Rot, IVF, Scan, SQ8, [O]PQ or RQ, Resid, Spill, Prefix8, NProbe, Shortlist, Rerank...).");
            stage = order;
        }
        // A PQ index without IVF scans its codes flat: one list.
        if (nlist is null && (pqBytes is not null || rqBits is not null)) nlist = 1;
        if (nlist is null) throw Error("an IVF<nlist> component is required (or a PQ/OPQ/RQ component for a flat code index).");

        int Number(string digits, string component)
        {
            if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v <= 0)
                throw Error($"\"{component}\" needs a positive integer where it has \"{digits}\".");
            return v;
        }

        return new IndexSpec
        {
            Rotate = rotate, Sq8 = sq8, NList = nlist.Value, CoarseDim = dc, ScanDim = ds, NProbe = nprobe, Shortlist = shortlist,
            Rerank = stages, PqBytes = pqBytes, PqBits = pqBits, PqDim = pqDim, Opq = opq, Residual = resid, Spill = spill, Prefix8Dim = prefix8,
            RqBits = rqBits, RqDim = rqDim,
        };
    }

    /// <summary>Parses and validates a spec read from an index file; a bad one is reported as a file error at <paramref name="offset"/>.</summary>
    internal static IndexSpec ParseStored(string text, int dimension, string path, long offset)
    {
        try
        {
            var spec = Parse(text);
            spec.Validate(dimension);
            return spec;
        }
        catch (FormatException e)
        {
            throw new Persistence.IndexFileException(path, offset, $"stored spec is invalid: {e.Message}", e);
        }
    }

    /// <summary>The canonical factory string.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        if (Rotate) sb.Append("Rot,");
        // A flat PQ index (one list, no coarse dim) is written without its implicit IVF1.
        bool flatPq = (IsPq || IsRaBitQ) && NList == 1 && CoarseDim is null;
        if (!flatPq)
        {
            sb.Append(CultureInfo.InvariantCulture, $"IVF{NList}");
            if (CoarseDim is { } dc) sb.Append(CultureInfo.InvariantCulture, $"@{dc}");
        }
        if (ScanDim is { } ds) sb.Append(CultureInfo.InvariantCulture, $",Scan{ds}");
        if (Sq8) sb.Append(",SQ8");
        if (PqBytes is { } m)
        {
            if (!flatPq) sb.Append(',');
            sb.Append(CultureInfo.InvariantCulture, $"{(Opq ? "OPQ" : "PQ")}{m}");
            if (PqBits != 8) sb.Append(CultureInfo.InvariantCulture, $"x{PqBits}");
            if (PqDim is { } pd) sb.Append(CultureInfo.InvariantCulture, $"@{pd}");
        }
        if (RqBits is { } rqb)
        {
            if (!flatPq) sb.Append(',');
            sb.Append(CultureInfo.InvariantCulture, $"RQ{rqb}");
            if (RqDim is { } rd) sb.Append(CultureInfo.InvariantCulture, $"@{rd}");
        }
        if (Residual) sb.Append(",Resid");
        if (Spill) sb.Append(",Spill");
        if (Prefix8Dim is { } p8) sb.Append(CultureInfo.InvariantCulture, $",Prefix8@{p8}");
        if (NProbe is { } np) sb.Append(CultureInfo.InvariantCulture, $",NProbe{np}");
        if (Shortlist is { } sl) sb.Append(CultureInfo.InvariantCulture, $",Shortlist{sl}");
        foreach (var st in Rerank)
        {
            sb.Append(CultureInfo.InvariantCulture, $",Rerank{st.Dim}");
            if (st.Keep is { } keep) sb.Append(CultureInfo.InvariantCulture, $"/{keep}");
        }
        return sb.ToString();
    }

    /// <summary>Specs are equal when every field is, rerank stages compared element-wise.</summary>
    public bool Equals(IndexSpec? other) =>
        other is not null && Rotate == other.Rotate && Sq8 == other.Sq8 && NList == other.NList && CoarseDim == other.CoarseDim &&
        ScanDim == other.ScanDim && NProbe == other.NProbe && Shortlist == other.Shortlist && Rerank.SequenceEqual(other.Rerank) &&
        PqBytes == other.PqBytes && PqBits == other.PqBits && PqDim == other.PqDim && Opq == other.Opq && Residual == other.Residual &&
        Spill == other.Spill && Prefix8Dim == other.Prefix8Dim && RqBits == other.RqBits && RqDim == other.RqDim;

    /// <inheritdoc/>
    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);
}
