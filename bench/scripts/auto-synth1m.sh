#!/usr/bin/env bash
# The self-tuning index on the seeded 1M x 256 synthetic Matryoshka set (cosine): hnswlib (M16, efC200, single-thread
# build and search, one run: its build alone takes ~17 minutes on one core) and then `--methods auto` tuned once for
# 0.99 with rows at 0.9 / 0.95 / 0.99, on the same files; merge.py interpolates QPS at recall 0.95.
# Usage: bench/scripts/auto-synth1m.sh [WORK_DIR] [OUT_DIR]   (~25 minutes; the set is generated once into WORK_DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-/tmp/adanns-synth-1m}; out=${2:-bench/out/auto-synth1m}
mkdir -p "$W" "$out"; rm -f "$out/engine.jsonl" "$out/peers.jsonl"
export MSBUILDDISABLENODEREUSE=1
dotnet build bench -c Release -v quiet -nologo -p:UseSharedCompilation=false
if [ ! -f "$W/groundtruth.ivecs" ]; then
  dotnet run -c Release --project bench --no-build -- gen-synth --n 1000000 --dim 256 --queries 1000 --clusters 1000 \
      --noise 1.0 --seed 42 --metric cosine --out "$W"
fi
common=(--base "$W/base.fvecs" --queries "$W/query.fvecs" --gt "$W/groundtruth.ivecs" --metric cosine --k 10 --threads 1 --dataset synthetic-mrl-1m)
echo "== hnswlib == load: $(cut -d' ' -f1-3 /proc/loadavg) $(date +%T)"
/usr/bin/python3 bench/peers/peers.py "${common[@]}" --methods hnswlib --repeats 3 --hnswlib-ef 10,16,20,24,32,40,48,64,96,128,256 \
    --out "$out/peers.jsonl" | tee "$out/peers.txt"
echo "== auto == load: $(cut -d' ' -f1-3 /proc/loadavg) $(date +%T)"
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods auto --target-recall 0.9,0.95,0.99 --repeats 5 \
    --single-queries 200 --out "$out/engine.jsonl" | tee "$out/engine.txt"
echo "== end == load: $(cut -d' ' -f1-3 /proc/loadavg) $(date +%T)"
/usr/bin/python3 bench/peers/merge.py "$out/engine.jsonl" "$out/peers.jsonl" --k 10 --out-md "$out/summary.md"; cat "$out/summary.md"
