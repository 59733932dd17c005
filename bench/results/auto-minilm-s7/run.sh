#!/usr/bin/env bash
# Quiet-window runs of the lead (issue 15, session 7), sequential. Run from /work/main at the commit under test.
set -uo pipefail
cd /work/main
export MSBUILDDISABLENODEREUSE=1
M=/work/shared/data/debian-minilm; F=/work/data-fm
echo "commit $(git rev-parse --short HEAD)  start $(date -u +%T)  load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet build bench -c Release -v quiet -nologo -p:UseSharedCompilation=false | tail -1
# 1. debian-minilm: hnswlib, auto at 0.95, auto at 0.9/0.95/0.99, hnswlib
o=bench/out/auto-minilm-s7; mkdir -p $o; rm -f $o/*.jsonl
common=(--base $M/minilm_base.fvecs --queries $M/minilm_query.fvecs --gt $M/minilm_groundtruth.ivecs --metric ip --k 10 --threads 1 --dataset debian-minilm)
hnsw=("${common[@]}" --methods hnswlib --repeats 10 --hnswlib-ef 10,16,20,24,28,32,40,48,64,128,256,512 --out $o/peers.jsonl)
echo "== minilm hnswlib before  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; /usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" > $o/peers.txt
echo "== minilm auto 0.95  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods auto --target-recall 0.95 --repeats 10 --single-queries 200 --out $o/engine.jsonl > $o/engine.txt
echo "== minilm auto 0.9,0.95,0.99  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods auto --target-recall 0.9,0.95,0.99 --repeats 10 --single-queries 200 --out $o/engine-multi.jsonl > $o/engine-multi.txt
echo "== minilm hnswlib after  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; /usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" >> $o/peers.txt
/usr/bin/python3 bench/peers/merge.py $o/engine.jsonl $o/peers.jsonl --k 10 --out-md $o/summary.md > /dev/null
/usr/bin/python3 bench/peers/merge.py $o/engine-multi.jsonl $o/peers.jsonl --k 10 --out-md $o/summary-multi.md > /dev/null
# 2. Fashion-MNIST: hnswlib, auto at 0.9/0.95/0.99, hnswlib
o=bench/out/auto-fashion-s7; mkdir -p $o; rm -f $o/*.jsonl
common=(--base $F/fmnist_base.fvecs --queries $F/fmnist_query.fvecs --metric l2 --k 10 --threads 1 --dataset fashion-mnist)
hnsw=("${common[@]}" --methods hnswlib --repeats 10 --hnswlib-ef 10,16,20,24,28,32,40,48,64,128,256,512 --out $o/peers.jsonl)
echo "== fashion hnswlib before  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; /usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" > $o/peers.txt
echo "== fashion auto 0.95  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods auto --target-recall 0.95 --repeats 10 --single-queries 200 --out $o/engine-095.jsonl > $o/engine-095.txt
echo "== fashion auto 0.9,0.95,0.99  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet run -c Release --project bench --no-build -- "${common[@]}" --methods auto --target-recall 0.9,0.95,0.99 --repeats 10 --single-queries 200 --out $o/engine.jsonl > $o/engine.txt
echo "== fashion hnswlib after  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; /usr/bin/python3 bench/peers/peers.py "${hnsw[@]}" >> $o/peers.txt
/usr/bin/python3 bench/peers/merge.py $o/engine.jsonl $o/peers.jsonl --k 10 --out-md $o/summary.md > /dev/null
/usr/bin/python3 bench/peers/merge.py $o/engine-095.jsonl $o/peers.jsonl --k 10 --out-md $o/summary-095.md > /dev/null
# 3. the default experiment
echo "== default experiment  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet run -c Release --project bench --no-build -- --out bench/out/default-s7.jsonl > bench/out/default-s7.txt
echo "end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
