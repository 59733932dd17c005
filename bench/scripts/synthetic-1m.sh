#!/usr/bin/env bash
# The issue-3 table on a seeded synthetic Matryoshka set of 1,000,000 × 256 (cosine), single-thread search,
# with FAISS IVF-Flat and hnswlib on the same files. Takes ~30 minutes on a 2-core machine (peers' builds dominate).
# Usage: bench/scripts/synthetic-1m.sh [WORK_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-/tmp/adanns-synth-1m}
out=${2:-bench/out/synth1m}
mkdir -p "$work" "$out"
rm -f "$out/engine.jsonl" "$out/peers.jsonl"
dotnet build bench -c Release -v quiet -nologo >/dev/null
if [ ! -f "$work/groundtruth.ivecs" ]; then
  dotnet run -c Release --project bench --no-build -- gen-synth --n 1000000 --dim 256 --queries 1000 --clusters 1000 \
      --noise 1.0 --seed 42 --metric cosine --out "$work"
fi
common=(--base "$work/base.fvecs" --queries "$work/query.fvecs" --gt "$work/groundtruth.ivecs"
        --labels-base "$work/base_labels.ivecs" --labels-query "$work/query_labels.ivecs"
        --metric cosine --k 10 --threads 1 --dataset synthetic-mrl-1m)
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods flat,ivf,adanns-ivf,mrl-funnel \
    --dims 32,64,128,256 --nlist 2048 --kmeans-points 64 --build-threads 2 --ds 16,32,64 --shortlists 50,100,200,400 \
    --nprobes 1,2,4,8,16,32,64,128 --dc 64 --repeats 1 --single-queries 100 --out "$out/engine.jsonl" | tee "$out/engine.txt"
# AdANNS-IVF clustered at the full dim with short decoupled scan dims (the second AdANNS row in RESULTS.md).
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods adanns-ivf --dc 256 --nlist 2048 \
    --kmeans-points 64 --build-threads 2 --ds 32,64 --shortlists 50,100,200 --nprobes 1,2,4,8,16 --repeats 1 \
    --single-queries 100 --out "$out/engine.jsonl" | tee "$out/engine-dc256.txt"
/usr/bin/python3 bench/peers/peers.py --base "$work/base.fvecs" --queries "$work/query.fvecs" --gt "$work/groundtruth.ivecs" \
    --metric cosine --k 10 --threads 1 --build-threads 2 --nlist 2048 --methods faiss-ivfflat,hnswlib \
    --dataset synthetic-mrl-1m --out "$out/peers.jsonl" | tee "$out/peers.txt"
/usr/bin/python3 bench/peers/merge.py "$out/engine.jsonl" "$out/peers.jsonl" --k 10 --out-md "$out/summary.md" --out-plot "$out/plot.png"
