#!/usr/bin/env bash
# Old commit vs this checkout, back to back in one run, on debian-minilm (single thread): the 4-bit headline point of
# minilm-ivf.sh (adanns-ivf-pq4-rot: Rot,IVF2048@128,PQ64x4@128,Spill,Prefix8@192, shortlist 160, rerank 192/30 -> 384,
# nprobe 32/40) and two 8-bit adanns-ivf points. Both builds search the SAME cached PQ index (built by the old code),
# so recall must be identical; runs alternate old/new twice to spread this VM's drift over both. The 8-bit index is
# built by each build itself (plain float / SQ8 specs: the old IVF class vs the one pipeline). Ends with a table: the
# better of each build's two runs per point, QPS new/old (batch and single-query) and recall@10 old vs new.
# Usage: flock /work/bench.lock bench/scripts/no-regression.sh OLD_COMMIT [DATA_DIR] [OUT_DIR]   (about 6-9 min on 2 vCPUs)
set -euo pipefail
cd "$(dirname "$0")/../.."
old=${1:?old commit}
data=$(realpath "${2:-../shared/data/debian-minilm}")
out=${3:-bench/out/no-regression}
mkdir -p "$out"
out=$(realpath "$out") # absolute: the runs below start in other directories
cache="$out/index-cache"
wt=$(mktemp -d)/old
git worktree add -q --detach "$wt" "$old"
trap 'git worktree remove --force "$wt"' EXIT
export MSBUILDDISABLENODEREUSE=1
dotnet build "$wt/bench" -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null
dotnet build bench -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm)
pq4=(--index-rot --methods ivf-opq --plain-pq --pq-bits 4 --dc 128 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --nlist 2048
     --spill --prefix8 192 --shortlists 160 --nprobes 32,40 --repeats 10 --single-queries 200 --index-cache "$cache")
ivf8=(--rotate --methods adanns-ivf --dc 64 --ds 96 --shortlists 100 --nprobes 32,64 --repeats 5 --single-queries 200)
rm -f "$out"/*.jsonl
uptime
for round in 1 2; do
  for who in old new; do
    dir=$([ "$who" = old ] && echo "$wt" || echo .)
    echo "== round $round: $who =="
    (cd "$dir" && dotnet run -c Release --project bench --no-build -- "${common[@]}" "${pq4[@]}" --label adanns-ivf-pq4-rot \
        --out "$out/$who.jsonl") | grep -E '^adanns-ivf-pq4-rot' || true
    (cd "$dir" && dotnet run -c Release --project bench --no-build -- "${common[@]}" "${ivf8[@]}" \
        --out "$out/$who-ivf8.jsonl") | grep -E '^adanns-ivf' || true
  done
done
uptime
/usr/bin/python3 - "$out" <<'PY' | tee "$out/summary.md"
import json, os, sys
def load(who):
    best = {}
    for name in (f"{who}.jsonl", f"{who}-ivf8.jsonl"):
        for line in open(os.path.join(sys.argv[1], name)):
            p = json.loads(line)
            key = (p["method"], json.dumps(p["params"], sort_keys=True))
            b = best.setdefault(key, {"qps": 0.0, "qps_single": 0.0, "recalls": set()})
            b["qps"] = max(b["qps"], p["qps"])
            b["qps_single"] = max(b["qps_single"], p.get("qps_single") or 0.0)
            b["recalls"].add(round(p["recall_at_k"], 6))
    return best
old, new = load("old"), load("new")
print("| method | params | recall@10 old | recall@10 new | batch QPS old | new | new/old | single QPS old | new | new/old |")
print("|---|---|---|---|---|---|---|---|---|---|")
ratios = []
for key in sorted(old):
    if key not in new: continue
    o, n = old[key], new[key]
    params = {k: v for k, v in json.loads(key[1]).items() if k in ("nlist", "dc", "ds", "shortlist", "nprobe")}
    rb = n["qps"] / o["qps"]
    rs = n["qps_single"] / o["qps_single"] if o["qps_single"] else float("nan")
    ratios += [rb, rs]
    ro = "/".join(f"{r:.4f}" for r in sorted(o["recalls"]))
    rn = "/".join(f"{r:.4f}" for r in sorted(n["recalls"]))
    print(f"| {key[0]} | {params} | {ro} | {rn} | {o['qps']:,.0f} | {n['qps']:,.0f} | {rb:.3f} | {o['qps_single']:,.0f} | {n['qps_single']:,.0f} | {rs:.3f} |")
same = all(old[k]["recalls"] == new[k]["recalls"] for k in old if k in new)
print(f"\nrecall identical at every point: {same}; lowest new/old QPS: {min(ratios):.3f} (within 5%: {min(ratios) >= 0.95})")
PY
