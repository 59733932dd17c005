#!/usr/bin/env bash
# Old commit vs this checkout, back to back in one run, on debian-minilm (single thread): the 4-bit headline point of
# minilm-ivf.sh (adanns-ivf-pq4-rot: Rot,IVF2048@128,PQ64x4@128,Spill,Prefix8@192, shortlist 160, rerank 192/30 -> 384,
# nprobe 32/40) and two 8-bit adanns-ivf points. Both builds search the SAME cached PQ index (built by the old code),
# so recall must be identical; runs alternate old/new twice to spread this VM's drift over both.
# Usage: bench/scripts/no-regression.sh OLD_COMMIT [DATA_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
old=${1:?old commit}
data=$(realpath "${2:-../shared/data/debian-minilm}")
out=${3:-bench/out/no-regression}
mkdir -p "$out"
cache="$(pwd)/$out/index-cache"
wt=$(mktemp -d)/old
git worktree add -q --detach "$wt" "$old"
trap 'git worktree remove --force "$wt"' EXIT
export MSBUILDDISABLENODEREUSE=1
dotnet build "$wt/bench" -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null
dotnet build bench -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm)
pq4=(--index-rot --methods ivf-opq --plain-pq --pq-bits 4 --dc 128 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --nlist 2048
     --spill --prefix8 192 --shortlists 160 --nprobes 32,40 --repeats 10 --single-queries 200 --index-cache "$cache")
ivf8=(--rotate --methods adanns-ivf --dc 64 --ds 96 --shortlists 100 --nprobes 32,64 --repeats 5 --single-queries 200)
rm -f "$out"/*.jsonl
for round in 1 2; do
  for who in old new; do
    dir=$([ "$who" = old ] && echo "$wt" || echo .)
    echo "== round $round: $who =="
    (cd "$dir" && dotnet run -c Release --project bench --no-build -- "${common[@]}" "${pq4[@]}" --label "pq4-rot-$who" \
        --out "$OLDPWD/$out/$who.jsonl") | grep -E '^pq4-rot' || true
    (cd "$dir" && dotnet run -c Release --project bench --no-build -- "${common[@]}" "${ivf8[@]}" \
        --out "$OLDPWD/$out/$who-ivf8.jsonl") | grep -E '^adanns-ivf' || true
  done
done
