#!/usr/bin/env bash
# The script behind bench/RESULTS.md "Int8 kernels without AVX-VNNI" (run as `flock /work/bench.lock run.sh`), kept as
# run. The four bench builds were made beforehand (`dotnet build bench -c Release`): old835 = a git worktree of
# 835ac60, main = one of 1f6382f, A = the code of fd9cc68 on 1f6382f (built before that commit's comment-only edits: the
# new int8 paths, PqIndex ranking centroids with them), B = the same
# with PqIndex's `if (Int8Kernels.IsAccelerated)` replaced by `if (AvxVnni.IsSupported)` (float-decoded coarse
# ranking here). old835 builds and searches its own index (cache-old); main, B and A share main's (cache-new);
# main-oldidx is main's code searching 835ac60's index.
# PQ4 headline pipeline (Rot,IVF2048@128,PQ64x4@128,Spill,Prefix8@192, rerank 192/30 -> 384) on debian-minilm,
# single thread: builds side by side, alternating, same data and queries.
set -uo pipefail
data=/work/shared/data/debian-minilm
out=/tmp/cmp/out2; mkdir -p $out; rm -f $out/*.jsonl $out/log.txt
declare -A dll=( [old835]=/tmp/old835/bench/bin/Release/net10.0/Adanns.Bench.dll [main]=/tmp/mainwt/bench/bin/Release/net10.0/Adanns.Bench.dll
                 [B]=/tmp/benchB/Adanns.Bench.dll [A]=/tmp/benchA/Adanns.Bench.dll )
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm)
pq4=(--index-rot --methods ivf-opq --plain-pq --pq-bits 4 --dc 128 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --nlist 2048
     --spill --prefix8 192 --shortlists 120,160 --nprobes 32,40 --repeats 10 --single-queries 200)
echo "start: $(uptime)" | tee -a $out/log.txt
run() { # label dll cache
  echo "== $1 (cache $3)   load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $out/log.txt
  dotnet "$2" "${common[@]}" "${pq4[@]}" --index-cache "$3" --label "$1" --out "$out/$1.jsonl" 2>&1 | grep -E "^$1|cpu|rror" | tee -a $out/log.txt
}
hnsw() {
echo "== hnswlib   load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $out/log.txt
(cd /work/wt-perf14 && /usr/bin/python3 bench/peers/peers.py --base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" \
  --gt "$data/minilm_groundtruth.ivecs" --metric ip --k 10 --threads 1 --methods hnswlib --repeats 5 --hnswlib-ef 20,24,28 \
  --dataset debian-minilm --build-threads 2 --out $out/hnswlib.jsonl) 2>&1 | grep -E "hnswlib " | tee -a $out/log.txt
}
hnsw
for round in 1 2 3; do
  run old835 ${dll[old835]} /tmp/cmp/cache-old
  run main ${dll[main]} /tmp/cmp/cache-new
  run main-oldidx ${dll[main]} /tmp/cmp/cache-old
  run B ${dll[B]} /tmp/cmp/cache-new
  run A ${dll[A]} /tmp/cmp/cache-new
done
echo "== hnswlib   load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $out/log.txt
(cd /work/wt-perf14 && /usr/bin/python3 bench/peers/peers.py --base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" \
  --gt "$data/minilm_groundtruth.ivecs" --metric ip --k 10 --threads 1 --methods hnswlib --repeats 5 --hnswlib-ef 20,24,28 \
  --dataset debian-minilm --build-threads 2 --out $out/hnswlib.jsonl) 2>&1 | tail -5 | tee -a $out/log.txt
echo "end: $(uptime)" | tee -a $out/log.txt
ls /tmp/cmp/cache-old /tmp/cmp/cache-new | tee -a $out/log.txt
echo "== micro CoarseRank (A)   load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $out/log.txt
(cd /tmp/cmp && dotnet /tmp/benchA/Adanns.Bench.dll micro --filter '*CoarseRank*' --job short --inProcess 2>&1 | grep -E "^\||Method|Int8|Float|Eight" | tail -12 | tee -a $out/log.txt)
echo "== micro CoarseRank (main build: scalar Dot here)   load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $out/log.txt
(cd /tmp/cmp && dotnet /tmp/mainwt/bench/bin/Release/net10.0/Adanns.Bench.dll micro --filter '*CoarseRank*' --job short --inProcess 2>&1 | grep -E "^\||Method" | tail -8 | tee -a $out/log.txt)
echo "end2: $(uptime)" | tee -a $out/log.txt
