#!/usr/bin/env bash
# Recall@10 before any rerank at equal code bytes: RaBitQ codes vs 4-bit PQ on debian-minilm (Rot, IVF1024@128,
# Spill, nprobe 16/32/64; results ranked by the codes' estimates).
# Usage: bench/scripts/minilm-rq-norerank.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/debian-minilm}
out=${2:-bench/out/minilm-rq}
mkdir -p "$out"
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm --repeats 1 --single-queries 0 --out "$out/norerank.jsonl"
        --nprobes 16,32,64 --stop-recall 1 --index-cache "$out/cache")
run() { dotnet run -c Release --project bench --no-build -- "${common[@]}" "$@"; }
# 32 B per vector on the 128-dim prefix: RQ1@128 (16 B of bits + 16 B of factors) vs PQ64x4@128.
run --methods ivf-rq --index-rot --nlist 1024 --dc 128 --spill --rq-bits 1 --rq-dims 128 --rq-modes none
run --methods spec --spec Rot,IVF1024@128,PQ64x4@128,Spill --shortlists 10 --label pq4-norerank
# 64 B per vector on all 384 dims: RQ1@384 (48 B + 16 B) vs PQ128x4@384; and 48 B: PQ96x4@384.
run --methods ivf-rq --index-rot --nlist 1024 --dc 128 --spill --rq-bits 1 --rq-dims 384 --rq-modes none
run --methods spec --spec Rot,IVF1024@128,PQ128x4@384,Spill --shortlists 10 --label pq4-norerank
run --methods spec --spec Rot,IVF1024@128,PQ96x4@384,Spill --shortlists 10 --label pq4-norerank
