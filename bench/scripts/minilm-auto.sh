#!/usr/bin/env bash
# The self-tuning index (--methods auto) on debian-minilm, single thread, bracketed by two hnswlib runs (M16, efC200,
# the ef sweep of minilm-ivf.sh); merge.py interpolates every method's QPS at recall 0.95 (the better hnswlib point kept).
# The tuner sees only the base vectors; the queries and ground truth are used for measuring alone.
# Needs: ../shared/data/debian-minilm (or DATA_DIR), Debian python3-hnswlib python3-faiss python3-numpy for the peer runner.
# Usage: bench/scripts/minilm-auto.sh [DATA_DIR] [OUT_DIR] [TARGETS]
set -euo pipefail
cd "$(dirname "$0")/../.."
data=$(realpath "${1:-../shared/data/debian-minilm}")
out=${2:-bench/out/minilm-auto}
targets=${3:-0.9,0.95,0.99}
mkdir -p "$out"
rm -f "$out/engine.jsonl" "$out/peers.jsonl"
export MSBUILDDISABLENODEREUSE=1
dotnet build bench -c Release -v quiet -nologo -p:UseSharedCompilation=false
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs" --metric ip
        --k 10 --threads 1 --dataset debian-minilm)
hnsw=("${common[@]}" --methods hnswlib --repeats 10 --hnswlib-ef 10,16,20,24,28,32,40,48,64,128,256,512 --out "$out/peers.jsonl")
echo "== hnswlib (M16, efC200), before =="
/usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" | tee "$out/peers.txt"
echo "== auto, targets $targets =="
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods auto --target-recall "$targets" --repeats 10 \
    --single-queries 200 --out "$out/engine.jsonl" | tee "$out/engine.txt"
echo "== hnswlib (M16, efC200), after =="
/usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" | tee -a "$out/peers.txt"
/usr/bin/python3 bench/peers/merge.py "$out/engine.jsonl" "$out/peers.jsonl" --k 10 --out-md "$out/summary.md"; cat "$out/summary.md"
