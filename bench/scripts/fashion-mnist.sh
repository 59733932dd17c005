#!/usr/bin/env bash
# Fashion-MNIST (Debian package dataset-fashion-mnist: 60,000 train images as the base, the first 1,000 test
# images as queries, 784 dims, L2), single thread: exact, rigid IVF, AdANNS-IVF and the MRL funnel on
# PCA-ordered (rotated) pixels, plus FAISS IVF-Flat and hnswlib on the raw pixels (a rotation changes neither
# L2 distances nor what full-dimension methods return).
# Usage: bench/scripts/fashion-mnist.sh [OUT_DIR]    (apt-get install dataset-fashion-mnist first)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=/usr/share/datasets/fashion-mnist
out=${1:-bench/out/fashion-mnist}
work=$out/data
mkdir -p "$work"
rm -f "$out/engine.jsonl" "$out/peers.jsonl"
dotnet build bench -c Release -v quiet -nologo >/dev/null
run() { dotnet run -c Release --project bench --no-build -- "$@"; }
run convert "$src/train-images-idx3-ubyte.gz" "$work/base.fvecs"
run convert "$src/t10k-images-idx3-ubyte.gz" "$work/query.fvecs" --limit 1000
run convert --ints "$src/train-labels-idx1-ubyte.gz" "$work/base_labels.ivecs"
run convert --ints "$src/t10k-labels-idx1-ubyte.gz" "$work/query_labels.ivecs" --limit 1000
common=(--base "$work/base.fvecs" --queries "$work/query.fvecs" --labels-base "$work/base_labels.ivecs"
        --labels-query "$work/query_labels.ivecs" --metric l2 --k 10 --threads 1 --dataset fashion-mnist)
run "${common[@]}" --rotate --methods flat,ivf,adanns-ivf,mrl-funnel --dims 32,64,128,784 --dc 64 --ds 16,32,64 \
    --shortlists 50,100,200 --nprobes 1,2,4,8,16,32,64 --repeats 2 --single-queries 200 --out "$out/engine.jsonl" | tee "$out/engine.txt"
/usr/bin/python3 bench/peers/peers.py --base "$work/base.fvecs" --queries "$work/query.fvecs" --metric l2 --k 10 \
    --threads 1 --methods faiss-ivfflat,hnswlib --dataset fashion-mnist --out "$out/peers.jsonl" | tee "$out/peers.txt"
/usr/bin/python3 bench/peers/merge.py "$out/engine.jsonl" "$out/peers.jsonl" --k 10 --out-md "$out/summary.md" --out-plot "$out/plot.png"
