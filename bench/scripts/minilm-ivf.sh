#!/usr/bin/env bash
# AdANNS-IVF vs rigid IVF vs MRL funnel vs exact search vs HNSW peers on debian-minilm, single thread, one run.
# Usage: bench/scripts/minilm-ivf.sh [DATA_DIR] [OUT_DIR]
# Needs: ../shared/data/debian-minilm (or DATA_DIR), Debian python3-faiss python3-hnswlib python3-numpy
# libopenblas0-openmp python3-matplotlib for the peers and the plot.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/data/debian-minilm}
out=${2:-bench/out/minilm}
mkdir -p "$out"
rm -f "$out/engine.jsonl" "$out/peers.jsonl"
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm)
dotnet build bench -c Release -v quiet -nologo >/dev/null
echo "== AdannsDotNet (rotation learned on the base, applied to base and queries) =="
dotnet run -c Release --project bench --no-build -- "${common[@]}" --rotate \
    --methods flat,ivf,adanns-ivf,mrl-funnel --dims 48,96,192,384 --dc 64 --ds 48,64,96,128 --shortlists 50,100,200,400 \
    --nprobes 8,16,32,48,64,96,128,192,256,384 --repeats 2 --single-queries 200 --out "$out/engine.jsonl" | tee "$out/engine.txt"
echo "== AdANNS-IVF clustered at the full dim (same index family, second build) =="
dotnet run -c Release --project bench --no-build -- "${common[@]}" --rotate --methods adanns-ivf --dc 384 --ds 64,96,128 \
    --shortlists 50,100,200 --nprobes 32,48,64,96,128,192 --repeats 2 --single-queries 200 --out "$out/engine.jsonl" | tee "$out/engine-dc384.txt"
echo "== AdANNS-IVF with a 4-bit PQ scan store (PqIndex fast scan): IVF2048 clustered at 128 dims, d_s = 128 as PQ64x4 codes, rerank 192 -> 384 =="
dotnet run -c Release --project bench --no-build -- "${common[@]}" --rotate --methods ivf-opq --label adanns-ivf-pq4 --plain-pq --pq-bits 4 \
    --nlist 2048 --dc 128 --pq-bytes 32 --pq-dims 128 --shortlists 80,120,160 --nprobes 32,64,96,128,192,256 --cascade 192/40 \
    --stop-recall 0.97 --repeats 2 --single-queries 200 --out "$out/engine.jsonl" | tee "$out/engine-pq4.txt"
echo "== The same with a quicker build (k-means: 4 iterations on 16 points per list; PQ: 6 iterations on 10,000 rows) =="
dotnet run -c Release --project bench --no-build -- "${common[@]}" --rotate --methods ivf-opq --label adanns-ivf-pq4-fastbuild --plain-pq \
    --pq-bits 4 --nlist 2048 --dc 128 --kmeans-iters 4 --kmeans-points 16 --pq-iters 6 --pq-train 10000 --pq-bytes 32 --pq-dims 128 \
    --shortlists 120,160 --nprobes 64,128,192,256 --cascade 192/40 --stop-recall 0.97 --repeats 2 --single-queries 200 \
    --out "$out/engine.jsonl" | tee "$out/engine-pq4-fastbuild.txt"
echo "== USearch (in process) =="
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods usearch --repeats 2 --out "$out/engine.jsonl" | tee "$out/usearch.txt"
echo "== hnswlib and FAISS IVF-Flat =="
/usr/bin/python3 bench/peers/peers.py --base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" \
    --gt "$data/minilm_groundtruth.ivecs" --metric ip --k 10 --threads 1 --methods hnswlib,faiss-ivfflat \
    --dataset debian-minilm --out "$out/peers.jsonl" | tee "$out/peers.txt"
/usr/bin/python3 bench/peers/merge.py "$out/engine.jsonl" "$out/peers.jsonl" --k 10 \
    --out-md "$out/summary.md" --out-plot "$out/plot.png"
