#!/usr/bin/env bash
# Flat (exact) search: AdannsDotNet vs FAISS IndexFlat, single thread, same files, one after the other.
# Usage: bench/scripts/flat-vs-faiss.sh [DATA_DIR] [OUT.jsonl]
# DATA_DIR holds minilm_base.fvecs, minilm_query.fvecs, minilm_groundtruth.ivecs (default ../shared/data/debian-minilm).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/debian-minilm}
out=${2:-bench/out/flat-minilm.jsonl}
mkdir -p "$(dirname "$out")"
dotnet build bench -c Release -v quiet -nologo >/dev/null
echo "== AdannsDotNet flat =="
dotnet run -c Release --project bench --no-build -- --base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" \
    --gt "$data/minilm_groundtruth.ivecs" --metric ip --k 10 --threads 1 --methods flat --dims 384 \
    --single-queries 1000 --dataset debian-minilm --out "$out"
echo "== FAISS IndexFlatIP =="
/usr/bin/python3 bench/peers/peers.py --base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" \
    --gt "$data/minilm_groundtruth.ivecs" --metric ip --k 10 --threads 1 --methods flat --single-queries 200 \
    --dataset debian-minilm --out "$out"
