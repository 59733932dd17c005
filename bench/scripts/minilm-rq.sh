#!/usr/bin/env bash
# RaBitQ codes (spec RQ{b}@{d}) vs the README's 4-bit PQ headline pipeline on debian-minilm, single thread, one run,
# rotation learned by the index (every query pays for it), bracketed by hnswlib before and after.
# Usage: bench/scripts/minilm-rq.sh [DATA_DIR] [OUT_DIR]   (wrap in `flock /work/bench.lock` on a shared machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/debian-minilm}
out=${2:-bench/out/minilm-rq}
mkdir -p "$out"
rm -f "$out/engine.jsonl" "$out/peers.jsonl"
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm --repeats 3 --single-queries 0 --out "$out/engine.jsonl"
        --index-cache "$out/cache")
hnsw=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs" --metric ip
      --k 10 --threads 1 --methods hnswlib --repeats 3 --hnswlib-ef 16,24,32,48,64 --dataset debian-minilm --out "$out/peers.jsonl")
run() { dotnet run -c Release --project bench --no-build -- "${common[@]}" "$@"; }
uptime
echo "== hnswlib (M16, efC200), before =="
/usr/bin/python3 bench/peers/peers.py "${hnsw[@]}"
echo "== PQ4 headline: Rot,IVF2048@128,PQ64x4@128,Spill,Prefix8@192, rerank 192/30 (8-bit copy) -> 384 =="
run --methods ivf-opq --plain-pq --pq-bits 4 --dc 128 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --index-rot --label pq4-headline-rot \
    --nlist 2048 --spill --prefix8 192 --shortlists 120,160 --nprobes 24,32,40,48 --stop-recall 0.97
echo "== RaBitQ 1 and 2 bits on the 192-dim prefix: bound-driven stage at 192 keeping 40, then 384; and the fixed shortlist =="
run --methods ivf-rq --index-rot --nlist 1024 --dc 128 --spill --rq-bits 1,2 --rq-dims 192 --rq-keep 40 --rq-modes bound,fixed \
    --shortlists 200 --nprobes 16,24,32,48 --stop-recall 0.97
echo "== RaBitQ 4 bits on all 384 dims: one bound-driven stage at 384; and the fixed shortlist =="
run --methods ivf-rq --index-rot --nlist 1024 --dc 128 --spill --rq-bits 4 --rq-dims 384 --rq-modes bound,fixed \
    --shortlists 100 --nprobes 16,24,32,48 --stop-recall 0.97
echo "== hnswlib (M16, efC200), after =="
/usr/bin/python3 bench/peers/peers.py "${hnsw[@]}"
uptime
