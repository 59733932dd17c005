#!/usr/bin/python3
"""Merge benchmark JSONL files (the engine's `dotnet run --project bench -- ... --out` and peers.py) into one
Markdown summary and one plot.

Usage:
    /usr/bin/python3 bench/peers/merge.py results.jsonl peers.jsonl ... --out-md summary.md \
        --out-plot plot.png [--k 10] [--dataset NAME]

Rows are grouped by (dataset, method). For each group the Pareto frontier is kept: the operating points that no
other point of the same method beats on both recall@k (higher is better) and cost (QPS: higher is better; the
frontier is computed separately for QPS and for FLOPs/query: lower is better).

The summary holds, per dataset:
  - "best QPS at recall@k >= 0.80 / 0.90 / 0.95 / 0.99": per method, the highest batch QPS among points reaching
    that recall (with the params), plus build seconds and bytes/vector;
  - "QPS at recall@k = 0.95": per method, its QPS frontier interpolated linearly at exactly 0.95, and the ratio to
    hnswlib's (when hnswlib was run);
  - per method, the QPS frontier points: params, recall@1, recall@k, QPS, FLOPs/query, p50 us.
Only rows with the requested k are used (--k, default 10). Rows whose flops_per_query is null (peers that
cannot count their work, e.g. hnswlib and USearch) are left out of the FLOPs panel only.

Plot (matplotlib, Agg): two panels, recall@k vs QPS and recall@k vs FLOPs/query, one frontier curve per method,
log-scale x. Without matplotlib the plot is skipped with a message; the Markdown is still written.
"""
import argparse
import json
import math
import sys
from collections import defaultdict

THRESHOLDS = [0.80, 0.90, 0.95, 0.99]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="JSONL files (one operating point per line)")
    ap.add_argument("--out-md", default=None, help="write the Markdown summary here (default: stdout)")
    ap.add_argument("--out-plot", default=None, help="write the two-panel PNG plot here (one per dataset "
                    "if several: NAME.png becomes NAME-<dataset>.png)")
    ap.add_argument("--k", type=int, default=10, help="use rows with this k (default 10)")
    ap.add_argument("--dataset", default=None, help="only this dataset (default: all found)")
    return ap.parse_args()


def load(paths, k, dataset):
    rows, skipped = [], 0
    for path in paths:
        with open(path) as f:
            for ln, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"{path}:{ln}: not JSON ({e}); skipped", file=sys.stderr)
                    skipped += 1
                    continue
                if not all(key in r for key in ("dataset", "method", "recall_at_k", "qps")):
                    skipped += 1
                    continue
                if r.get("k", k) != k or (dataset and r["dataset"] != dataset):
                    continue
                rows.append(r)
    if skipped:
        print(f"{skipped} lines without the expected fields were skipped", file=sys.stderr)
    # Runs on a truncated base (--max-base) share the dataset name: keep them apart by n.
    sizes = defaultdict(set)
    for r in rows:
        sizes[r["dataset"]].add(r.get("n"))
    for r in rows:
        if len(sizes[r["dataset"]]) > 1:
            r["dataset"] = f"{r['dataset']}@n={r.get('n')}"
    return rows


def frontier(points, cost, lower_is_better):
    """Pareto frontier on (cost, recall_at_k): sorted from cheapest to dearest, each point with strictly higher
    recall than every cheaper one."""
    pts = [p for p in points if p.get(cost) is not None and not (isinstance(p[cost], float) and math.isnan(p[cost]))]
    # cheapest first; for equal cost the best recall first
    pts.sort(key=lambda p: ((p[cost] if lower_is_better else -p[cost]), -p["recall_at_k"]))
    out, best = [], -1.0
    for p in pts:
        if p["recall_at_k"] > best:
            out.append(p)
            best = p["recall_at_k"]
    return out


TARGET = 0.95


def interpolate(points, target):
    """(QPS at recall = target, lower point, upper point) on the QPS frontier, linear in recall between the frontier
    points that bracket the target (the upper point alone when the lowest frontier point already reaches it);
    None when no point reaches the target."""
    fr = sorted(frontier(points, "qps", lower_is_better=False), key=lambda p: p["recall_at_k"])
    for i, p in enumerate(fr):
        if p["recall_at_k"] >= target:
            if i == 0 or p["recall_at_k"] == target:
                return p["qps"], p, p
            lo = fr[i - 1]
            t = (target - lo["recall_at_k"]) / (p["recall_at_k"] - lo["recall_at_k"])
            return lo["qps"] + t * (p["qps"] - lo["qps"]), lo, p
    return None


def fmt_params(p):
    params = p.get("params") or {}
    return " ".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, dict) else str(params)


def num(v, spec):
    return "-" if v is None else format(v, spec)


def summary(rows, k):
    lines = []
    by_ds = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_ds[r["dataset"]][r["method"]].append(r)
    for ds, methods in sorted(by_ds.items()):
        any_row = next(iter(methods.values()))[0]
        lines.append(f"## {ds} (n={any_row.get('n')}, dim={any_row.get('dim')}, k={k})\n")
        lines.append(f"### Best QPS at recall@{k} ≥ threshold\n")
        head = "| method | " + " | ".join(f"recall@{k} ≥ {t:.2f}" for t in THRESHOLDS) + \
            f" | max recall@{k} | build s | bytes/vector | threads |"
        lines.append(head)
        lines.append("|" + "---|" * (len(THRESHOLDS) + 5))
        for m, pts in sorted(methods.items()):
            cells = []
            for t in THRESHOLDS:
                ok = [p for p in pts if p["recall_at_k"] >= t]
                if ok:
                    b = max(ok, key=lambda p: p["qps"])
                    cells.append(f"{b['qps']:,.0f} ({fmt_params(b)})")
                else:
                    cells.append("-")
            builds = sorted({round(p["build_seconds"], 2) for p in pts if p.get("build_seconds") is not None})
            bpv = sorted({round(p["bytes_per_vector"]) for p in pts if p.get("bytes_per_vector") is not None})
            thr = sorted({p.get("threads") for p in pts if p.get("threads") is not None})
            lines.append(f"| {m} | " + " | ".join(cells) +
                         f" | {max(p['recall_at_k'] for p in pts):.4f} | {', '.join(f'{b:g}' for b in builds) or '-'}"
                         f" | {', '.join(str(b) for b in bpv) or '-'} | {', '.join(str(t) for t in thr) or '-'} |")
        lines.append("")
        # At exactly the target recall: each method's QPS frontier interpolated linearly between the two points that
        # bracket it, so a method whose sweep happens to land just above the target is not favoured or penalised.
        lines.append(f"### QPS at recall@{k} = {TARGET:.2f} (interpolated on each method's QPS frontier)\n")
        ref = interpolate(methods["hnswlib"], TARGET) if "hnswlib" in methods else None
        lines.append("| method | QPS at target | bracketing points (recall@k: QPS) | vs hnswlib |")
        lines.append("|---|---|---|---|")
        for m, pts in sorted(methods.items()):
            got = interpolate(pts, TARGET)
            if got is None:
                lines.append(f"| {m} | - | does not reach {TARGET:.2f} | - |")
                continue
            qps, lo, hi = got
            br = f"{lo['recall_at_k']:.4f}: {lo['qps']:,.0f} / {hi['recall_at_k']:.4f}: {hi['qps']:,.0f}" if lo is not hi \
                else f"{hi['recall_at_k']:.4f}: {hi['qps']:,.0f}"
            vs = f"{qps / ref[0]:.2f}x" if ref else "-"
            lines.append(f"| {m} | {qps:,.0f} | {br} | {vs} |")
        lines.append("")
        lines.append(f"### Frontier (recall@{k} vs QPS) per method\n")
        for m, pts in sorted(methods.items()):
            fr = frontier(pts, "qps", lower_is_better=False)
            fr.sort(key=lambda p: p["recall_at_k"])
            lines.append(f"**{m}** ({len(fr)} of {len(pts)} points on the frontier)\n")
            lines.append(f"| params | recall@1 | recall@{k} | QPS | MFLOP/query | p50 µs |")
            lines.append("|---|---|---|---|---|---|")
            for p in fr:
                fl = p.get("flops_per_query")
                lines.append(f"| {fmt_params(p)} | {p.get('recall_at_1', float('nan')):.4f} | {p['recall_at_k']:.4f} "
                             f"| {p['qps']:,.0f} | {num(None if fl is None else fl / 1e6, '.3f')} "
                             f"| {num(p.get('p50_us'), ',.0f')} |")
            lines.append("")
    return "\n".join(lines) + "\n", by_ds


def plot(by_ds, k, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: plot skipped (apt-get install -y python3-matplotlib); "
              "the Markdown summary was still written", file=sys.stderr)
        return []
    written = []
    many = len(by_ds) > 1
    for ds, methods in sorted(by_ds.items()):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
        for m, pts in sorted(methods.items()):
            fq = frontier(pts, "qps", lower_is_better=False)
            if fq:
                line, = ax1.plot([p["qps"] for p in fq], [p["recall_at_k"] for p in fq], marker="o", ms=4, label=m)
                color = line.get_color()
            else:
                color = None
            ff = frontier([p for p in pts if (p.get("flops_per_query") or 0) > 0], "flops_per_query",
                          lower_is_better=True)
            if ff:
                ax2.plot([p["flops_per_query"] for p in ff], [p["recall_at_k"] for p in ff], marker="o", ms=4,
                         label=m, color=color)
        ax1.set_xscale("log")
        ax1.set_xlabel("queries per second (batch, log)")
        ax1.set_ylabel(f"recall@{k}")
        ax1.set_title(f"{ds}: recall@{k} vs QPS")
        ax1.grid(True, which="both", alpha=0.3)
        ax1.legend(fontsize=8)
        ax2.set_xscale("log")
        ax2.set_xlabel("FLOPs per query (multiply-adds, log)")
        ax2.set_ylabel(f"recall@{k}")
        ax2.set_title(f"recall@{k} vs FLOPs/query (where counted)")
        ax2.grid(True, which="both", alpha=0.3)
        if ax2.lines:
            ax2.legend(fontsize=8)
        fig.tight_layout()
        out = path
        if many:
            stem, dot, ext = path.rpartition(".")
            out = f"{stem}-{ds}.{ext}" if dot else f"{path}-{ds}"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written


def main():
    args = parse_args()
    rows = load(args.inputs, args.k, args.dataset)
    if not rows:
        raise SystemExit(f"no rows with k={args.k} in {', '.join(args.inputs)}")
    md, by_ds = summary(rows, args.k)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(md)
        print(f"wrote {args.out_md} ({len(rows)} rows, {sum(len(m) for m in by_ds.values())} (dataset, method) groups)")
    else:
        sys.stdout.write(md)
    if args.out_plot:
        for p in plot(by_ds, args.k, args.out_plot):
            print(f"wrote {p}")


if __name__ == "__main__":
    main()
