#!/usr/bin/env bash
# AdANNS-OPQ vs rigid OPQ (byte budgets 8/16/32/64) and IVF-OPQ vs FAISS OPQ48,IVF971,PQ48 + IndexRefineFlat on
# debian-minilm, single thread. Parts: codes (recall per byte budget), ivf (QPS at recall, 8-bit codes), peers (FAISS),
# fast (4-bit fast-scan IVF-OPQ and FAISS's IVF-OPQ + refine in one run; FAISS trained once, then cached), all.
# Usage: [ADANNS_FAISS_CACHE=DIR] bench/scripts/minilm-opq.sh [codes|ivf|peers|fast|all] [DATA_DIR] [OUT_DIR]
# Needs ../shared/data/debian-minilm (or DATA_DIR); the peers part needs Debian python3-faiss python3-numpy
# libopenblas0-openmp (and python3-matplotlib for the plot).
set -euo pipefail
cd "$(dirname "$0")/../.."
part=${1:-all}
data=${2:-../shared/data/debian-minilm}
out=${3:-bench/out/minilm-opq}
mkdir -p "$out"
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm)
dotnet build bench -c Release -v quiet -nologo >/dev/null
if [[ $part == codes || $part == all ]]; then
  rm -f "$out/codes.jsonl"
  echo "== rigid OPQ vs AdANNS-OPQ per byte budget (rotation learned on the base; flat code scans) =="
  dotnet run -c Release --project bench --no-build -- "${common[@]}" --rotate --methods opq --pq-bytes 8,16,32,64 \
      --repeats 1 --single-queries 0 --out "$out/codes.jsonl" | tee "$out/codes.txt"
fi
if [[ $part == ivf || $part == all ]]; then
  rm -f "$out/ivf.jsonl" "$out/ivf.txt"
  echo "== AdANNS IVF-OPQ: IVF1024 clustered at 64 (or 384) dims, OPQ codes on a prefix, rerank at 384 =="
  # bytes, code dim, residual or not (the issue asks for both; residuals cost a table per list only for L2), d_c.
  for cfg in "48 192 - 64" "48 192 --pq-resid 64" "32 128 - 64" "16 64 - 64" "32 128 - 384"; do
    set -- $cfg
    resid=(); [[ $3 == --pq-resid ]] && resid=(--pq-resid)
    dotnet run -c Release --project bench --no-build -- "${common[@]}" --rotate --methods ivf-opq --nlist 1024 --dc "$4" \
        --pq-bytes "$1" --pq-dims "$2" "${resid[@]}" --shortlists 100,200 --nprobes 32,64,96,128,192,256 --stop-recall 0.97 \
        --repeats 3 --single-queries 200 --out "$out/ivf.jsonl" | tee -a "$out/ivf.txt"
  done
fi
if [[ $part == fast || $part == all ]]; then
  # The QPS target side by side in one run: our 4-bit fast-scan IVF-OPQ, then FAISS OPQ48,IVF971,PQ48 + refine.
  rm -f "$out/fast.jsonl" "$out/fast.txt"
  echo "== IVF-OPQ with 4-bit fast-scan codes: IVF2048 clustered at 128 dims, OPQ{2·bytes}x4 on a prefix, rerank 192 -> 384 =="
  for cfg in "48 192" "32 128"; do
    set -- $cfg
    dotnet run -c Release --project bench --no-build -- "${common[@]}" --rotate --methods ivf-opq --pq-bits 4 --nlist 2048 --dc 128 \
        --pq-bytes "$1" --pq-dims "$2" --shortlists 80,120,160 --nprobes 64,96,128,192,256 --cascade 192/40 --stop-recall 0.97 \
        --repeats 3 --single-queries 200 --out "$out/fast.jsonl" | tee -a "$out/fast.txt"
  done
  /usr/bin/python3 bench/peers/peers.py "${common[@]}" --methods faiss-opq-rf --pq-m 48 --nlist 971 --kfactors 4 \
      --index-cache "${ADANNS_FAISS_CACHE:-bench/out/faiss-cache}" --repeats 3 --single-queries 200 --out "$out/fast.jsonl" \
      | tee -a "$out/fast.txt"
  # FAISS's own 4-bit fast scan at 48 bytes (PQ96x4fs; no OPQ: its training alone takes most of an hour here).
  /usr/bin/python3 bench/peers/peers.py "${common[@]}" --methods faiss-ivfpqfs-rf --pq-m 96 --nlist 971 --kfactors 4,8,16 \
      --index-cache "${ADANNS_FAISS_CACHE:-bench/out/faiss-cache}" --repeats 3 --single-queries 200 --out "$out/fast.jsonl" \
      | tee -a "$out/fast.txt"
fi
if [[ $part == peers || $part == all ]]; then
  rm -f "$out/peers.jsonl"
  echo "== FAISS OPQ{M},PQ{M} (flat) per budget and OPQ48,IVF971,PQ48 + IndexRefineFlat =="
  /usr/bin/python3 bench/peers/peers.py "${common[@]}" --methods faiss-opq-flat --pq-ms 8,16,32,64 --pq-train 20000 \
      --repeats 1 --single-queries 0 --out "$out/peers.jsonl" | tee "$out/peers.txt"
  # Training OPQ48,IVF971,PQ48 takes most of an hour with Debian's FAISS: the trained index is kept in the cache
  # (ADANNS_FAISS_CACHE) and reused, with the build time measured when it was trained.
  /usr/bin/python3 bench/peers/peers.py "${common[@]}" --methods faiss-opq-rf --pq-m 48 --nlist 971 --kfactors 4 \
      --index-cache "${ADANNS_FAISS_CACHE:-bench/out/faiss-cache}" --repeats 3 --single-queries 200 --out "$out/peers.jsonl" \
      | tee -a "$out/peers.txt"
fi
