#!/usr/bin/env bash
# Rigid OPQ vs AdANNS-OPQ per byte budget (8/16/32/64) and IVF-OPQ on a seeded synthetic Matryoshka set of
# 100,000 × 256 (cosine), single thread, with FAISS OPQ{M},PQ{M} on the same files.
# Usage: bench/scripts/synthetic-opq.sh [WORK_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-/tmp/adanns-synth-100k}
out=${2:-bench/out/synth-opq}
mkdir -p "$work" "$out"
rm -f "$out/engine.jsonl" "$out/peers.jsonl"
dotnet build bench -c Release -v quiet -nologo >/dev/null
if [ ! -f "$work/groundtruth.ivecs" ]; then
  dotnet run -c Release --project bench --no-build -- gen-synth --n 100000 --dim 256 --queries 500 --clusters 1000 \
      --noise 1.0 --seed 42 --metric cosine --out "$work"
fi
common=(--base "$work/base.fvecs" --queries "$work/query.fvecs" --gt "$work/groundtruth.ivecs"
        --metric cosine --k 10 --threads 1 --dataset synthetic-mrl-100k)
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods opq --pq-bytes 8,16,32,64 \
    --repeats 1 --single-queries 0 --out "$out/engine.jsonl" | tee "$out/engine.txt"
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods ivf-opq --nlist 1024 --dc 64 --pq-bytes 16 \
    --pq-dims 64 --shortlists 50,100,200 --nprobes 1,2,4,8,16,32 --repeats 3 --single-queries 200 \
    --out "$out/engine.jsonl" | tee -a "$out/engine.txt"
/usr/bin/python3 bench/peers/peers.py "${common[@]}" --methods faiss-opq-flat --pq-ms 8,16,32,64 --pq-train 20000 \
    --repeats 1 --single-queries 0 --out "$out/peers.jsonl" | tee "$out/peers.txt"
