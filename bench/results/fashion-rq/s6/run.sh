set -euo pipefail
data=/work/data-fm; out=/work/wt-rq16/bench/out/fm; mkdir -p $out; rm -f $out/engine.jsonl
B=/work/wt-rq16b/bench/bin/Release/net10.0/Adanns.Bench.dll
common=(--base "$data/fmnist_base.fvecs" --queries "$data/fmnist_query.fvecs" --metric l2 --k 10 --threads 1
        --dataset fashion-mnist --repeats 3 --single-queries 0 --out "$out/engine.jsonl" --index-cache "$out/cache" --stop-recall 0.97)
run() { dotnet $B "${common[@]}" "$@" 2>&1 | grep -E "cpu|^(ivf-rq|pq4-rot) +nlist|built in"; }
uptime
pq4() { run --methods ivf-opq --plain-pq --pq-bits 4 --dc 64 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --index-rot --label pq4-rot \
    --nlist 1024 --spill --prefix8 192 --shortlists 120 --nprobes 8,16; }
pq4
run --methods ivf-rq --index-rot --nlist 512 --dc 256 --spill --rq-bits 1 --rq-dims 784 --rq-modes bound,fixed --shortlists 40,80 --nprobes 3,4
run --methods ivf-rq --index-rot --nlist 512 --dc 256 --spill --rq-bits 1 --rq-dims 392 --rq-keep 20 --rq-modes bound,fixed --shortlists 40 --nprobes 3,4
pq4
uptime
