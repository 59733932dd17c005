#!/usr/bin/env bash
# RaBitQ pipelines vs the README's PQ4 headline pipeline on debian-minilm: single thread, one run, `Rot` paid by every
# query, the PQ4 rows run before and after the RaBitQ rows (compare ratios inside the run only). About 5–8 minutes on a
# quiet machine (index builds included; a second run reuses OUT/cache).
# Usage: bench/scripts/rq-vs-pq4.sh [DATA_DIR] [OUT_DIR]   (wrap in `flock /work/bench.lock` on a shared machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/debian-minilm}
out=${2:-bench/out/rq-vs-pq4}
mkdir -p "$out"
rm -f "$out/engine.jsonl" "$out/log.txt"
dotnet build bench -c Release -v q -nologo >/dev/null
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm --repeats 5 --single-queries 0 --out "$out/engine.jsonl"
        --index-cache "$out/cache" --stop-recall 0.951)
# The log keeps each point's "(cpu … us/query, wall … us/query)" line (best round): on a shared machine CPU time
# excludes waiting for a core, so its ratios are the steadier ones.
run() { dotnet run -c Release --project bench --no-build -- "${common[@]}" "$@" | tee -a "$out/log.txt"; }
pq4() {
  run --methods ivf-opq --plain-pq --pq-bits 4 --dc 128 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --index-rot --label pq4-headline-rot \
      --nlist 2048 --spill --prefix8 192 --shortlists 120 --nprobes 32,40,48
}
uptime
echo "== PQ4 headline: Rot,IVF2048@128,PQ64x4@128,Spill,Prefix8@192, rerank 192/30 (8-bit copy) -> 384 (before) =="
pq4
echo "== RaBitQ 1 bit on all 384 dims, IVF1024: one bound-driven stage at 384 (shortlist <= 40); and the fixed shortlist =="
echo "== (dense d x d rotation P, then the structured Hadamard one: same data, same lists) =="
run --methods ivf-rq --index-rot --nlist 1024 --dc 128 --spill --rq-bits 1 --rq-dims 384 --rq-modes bound,fixed --shortlists 40 --nprobes 24,26,28,32 \
    --rq-rotation dense,hadamard
echo "== RaBitQ 1 bit on all 384 dims, IVF2048: one bound-driven stage at 384 (shortlist <= 60) =="
run --methods ivf-rq --index-rot --nlist 2048 --dc 128 --spill --rq-bits 1 --rq-dims 384 --rq-modes bound --shortlists 40,60 --nprobes 24,26,28,32,40
echo "== RaBitQ 1 bit on the 192-dim prefix (the tuner's pick), IVF1024: bound-driven stage at 192 keeping 40, then 384 =="
run --methods ivf-rq --index-rot --nlist 1024 --dc 128 --spill --rq-bits 1 --rq-dims 192 --rq-keep 40 --rq-modes bound --shortlists 60,80 --nprobes 24,26,28,32
echo "== RaBitQ 2 bits on the 192-dim prefix, IVF1024: bound-driven stage at 192 keeping 40, then 384 =="
run --methods ivf-rq --index-rot --nlist 1024 --dc 128 --spill --rq-bits 2 --rq-dims 192 --rq-keep 40 --rq-modes bound --shortlists 120 --nprobes 24,28
echo "== PQ4 headline (after) =="
pq4
uptime
python3 - "$out/engine.jsonl" "$out/log.txt" <<'PY'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = [float(m.group(1)) for m in re.finditer(r"\(cpu (\d+) us/query", open(sys.argv[2]).read())]
for j, c in zip(rows, cpu): j["cpu_us"] = c
def label(j):
    p = j["params"]
    if j["method"] != "ivf-rq": return j["method"]
    return f'RQ{p["bits"]}@{p["d"]} {p.get("rq_rotation", "dense")[:4]} IVF{p["nlist"]} {p["mode"]} sl{p["shortlist"]}'
print(f'{"pipeline":41} {"nprobe":>6} {"recall":>7} {"QPS":>8} {"cpu us/q":>9} {"reranked":>9}')
for j in rows:
    p = j["params"]
    print(f'{label(j):41} {p["nprobe"]:>6} {j["recall_at_k"]:>7.4f} {j["qps"]:>8.0f} {j.get("cpu_us", 0):>9.0f} {p.get("reranked", 0):>9.1f}')
first_rq = next((i for i, j in enumerate(rows) if j["method"] == "ivf-rq"), len(rows))
def best(sel, key="qps"):
    q = [(j[key] if key == "qps" else 1e6 / j[key]) for j in sel if j["recall_at_k"] >= 0.95 and key in j]
    return max(q) if q else None
before = best([j for j in rows[:first_rq] if j["method"] != "ivf-rq"])
after = best([j for j in rows[first_rq:] if j["method"] != "ivf-rq"])
rq = {}
for j in rows:
    if j["method"] == "ivf-rq" and j["recall_at_k"] >= 0.95:
        rq[label(j)] = max(rq.get(label(j), 0), j["qps"])
rqc = {}
for j in rows:
    if j["method"] == "ivf-rq" and j["recall_at_k"] >= 0.95 and "cpu_us" in j:
        rqc[label(j)] = max(rqc.get(label(j), 0), 1e6 / j["cpu_us"])
if before and after:
    lo, hi = min(before, after), max(before, after)
    print(f"PQ4 headline, best QPS at recall >= 0.95: before {before:.0f}, after {after:.0f}")
    for k, v in rq.items(): print(f"{k:41} best QPS at recall >= 0.95: {v:.0f} = {v/hi:.2f}x-{v/lo:.2f}x the PQ4 headline")
cb = best([j for j in rows[:first_rq] if j["method"] != "ivf-rq"], "cpu_us")
ca = best([j for j in rows[first_rq:] if j["method"] != "ivf-rq"], "cpu_us")
if cb and ca:
    lo, hi = min(cb, ca), max(cb, ca)
    print(f"By CPU time (queries per CPU second): PQ4 headline before {cb:.0f}, after {ca:.0f}")
    for k, v in rqc.items(): print(f"{k:41} {v:.0f} per CPU second = {v/hi:.2f}x-{v/lo:.2f}x the PQ4 headline")
PY
