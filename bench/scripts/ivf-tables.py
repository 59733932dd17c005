#!/usr/bin/python3
"""Rigid IVF vs AdANNS-IVF tables (the paper's Figure 1 comparison) from the harness's JSONL.

For each rigid-IVF operating point: (a) equal FLOPs — the best AdANNS-IVF recall@k at no more FLOPs/query;
(b) equal recall — the fewest FLOPs and the best QPS among AdANNS-IVF points with at least that recall.
Usage: bench/scripts/ivf-tables.py engine.jsonl [--rigid ivf] [--adaptive adanns-ivf]
"""
import argparse, json

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("jsonl")
ap.add_argument("--rigid", default="ivf")
ap.add_argument("--adaptive", default="adanns-ivf")
a = ap.parse_args()
pts = [json.loads(l) for l in open(a.jsonl) if l.strip()]
rigid = sorted((p for p in pts if p["method"] == a.rigid), key=lambda p: p["flops_per_query"])
ada = [p for p in pts if p["method"] == a.adaptive]
if not rigid or not ada:
    raise SystemExit(f"need both {a.rigid} and {a.adaptive} points in {a.jsonl}")
k = rigid[0]["k"]
print(f"| {a.rigid} params | recall@{k} | MFLOPs/q | QPS | {a.adaptive} recall@{k} at ≤ equal FLOPs | "
      f"{a.adaptive} MFLOPs/q at ≥ equal recall (ratio) | {a.adaptive} QPS at ≥ equal recall (ratio) |")
print("|---|---|---|---|---|---|---|")
for r in rigid:
    cheaper = [p for p in ada if p["flops_per_query"] <= r["flops_per_query"]]
    eq_f = max(cheaper, key=lambda p: p["recall_at_k"]) if cheaper else None
    better = [p for p in ada if p["recall_at_k"] >= r["recall_at_k"]]
    min_f = min(better, key=lambda p: p["flops_per_query"]) if better else None
    max_q = max(better, key=lambda p: p["qps"]) if better else None
    params = ",".join(f"{k2}={v}" for k2, v in r["params"].items() if k2 in ("nlist", "nprobe"))
    c5 = f"{eq_f['recall_at_k']:.4f}" if eq_f else "-"
    c6 = f"{min_f['flops_per_query']/1e6:.3f} ({r['flops_per_query']/min_f['flops_per_query']:.1f}x fewer)" if min_f else "-"
    c7 = f"{max_q['qps']:.0f} ({max_q['qps']/r['qps']:.1f}x)" if max_q else "-"
    print(f"| {params} | {r['recall_at_k']:.4f} | {r['flops_per_query']/1e6:.3f} | {r['qps']:.0f} | {c5} | {c6} | {c7} |")
