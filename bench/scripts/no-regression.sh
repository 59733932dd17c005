#!/usr/bin/env bash
# Old commit vs this checkout, interleaved in one run, on debian-minilm (single thread): the 4-bit headline point of
# minilm-ivf.sh (adanns-ivf-pq4-rot: Rot,IVF2048@128,PQ64x4@128,Spill,Prefix8@192, shortlist 160, rerank 192/30 -> 384,
# nprobe 32/40) and two 8-bit adanns-ivf points (IVF@64, SQ8 scan at 96, shortlist 100, nprobe 32/64).
#
# Design against this VM's run-to-run noise (±8% batch): ROUNDS rounds (default 8), each running both builds back to
# back, in ABBA order (old,new then new,old) so a drift over the run falls on both; the summary pairs the builds within
# each round (per-round ratios new/old) and reports their median, min and max, besides the medians of each build's QPS
# and of its process CPU time per query (steadier than wall time on a shared VM).
# Single-query QPS times all 1,000 queries one call at a time (best of the repeats).
# Both builds search the SAME cached 4-bit index (built by the old code in the first run), so where the arithmetic is
# the same, recall must be identical. The 8-bit index is built by each build itself (plain SQ8 spec: old IVF class vs
# the one pipeline; seeded, so the same clusters).
#
# OLD_OVERLAY (default: src/Kernels/Int8Kernels.cs) lists files copied from this checkout onto the old worktree before
# it is built. The default gives the old pipeline the same int8 kernels as the new one: without it, on a CPU without
# AVX-VNNI (.NET exposes no AVX-512 VNNI), the old commit runs the Prefix8 stage's int8 dot products in scalar code and
# ranks centroids by decoding 8-bit codes to float, so the comparison would measure the kernels (fd9cc68), not the
# pipeline. OLD_OVERLAY= (empty) compares the plain old commit.
#
# The builds run first; the measured rounds then hold BENCH_LOCK (default /work/bench.lock; empty: no lock) with
# flock, so other agents' benchmarks on a shared VM wait for them (do not wrap the script in flock on the same file).
# Usage: bench/scripts/no-regression.sh OLD_COMMIT [DATA_DIR] [OUT_DIR]   (about 1.5 min per round on 2 vCPUs, plus builds)
set -euo pipefail
cd "$(dirname "$0")/../.."
old=${1:?old commit}
data=$(realpath "${2:-../shared/data/debian-minilm}")
out=${3:-bench/out/no-regression}
rounds=${ROUNDS:-8}
overlay=${OLD_OVERLAY-src/Kernels/Int8Kernels.cs}
mkdir -p "$out"
out=$(realpath "$out") # absolute: the runs below start in other directories
cache="$out/index-cache"
wt=$(mktemp -d)/old
git worktree add -q --detach "$wt" "$old"
trap 'git worktree remove --force "$wt"' EXIT
for f in $overlay; do cp "$f" "$wt/$f"; done
export MSBUILDDISABLENODEREUSE=1
dotnet build "$wt/bench" -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null
dotnet build bench -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null
common=(--base "$data/minilm_base.fvecs" --queries "$data/minilm_query.fvecs" --gt "$data/minilm_groundtruth.ivecs"
        --metric ip --k 10 --threads 1 --dataset debian-minilm)
pq4=(--index-rot --methods ivf-opq --plain-pq --pq-bits 4 --dc 128 --pq-bytes 32 --pq-dims 128 --cascade 192/30 --nlist 2048
     --spill --prefix8 192 --shortlists 160 --nprobes 32,40 --repeats 10 --single-queries 1000 --index-cache "$cache")
ivf8=(--rotate --methods adanns-ivf --dc 64 --ds 96 --shortlists 100 --nprobes 32,64 --repeats 5 --single-queries 1000)
rm -f "$out"/*.jsonl "$out"/*.log
lock=${BENCH_LOCK-/work/bench.lock}
if [ -n "$lock" ]; then exec 9>"$lock"; echo "waiting for $lock"; flock 9; fi
{
  echo "old: $(git -C "$wt" rev-parse --short HEAD)${overlay:+ + overlay from this checkout: $overlay}"
  echo "new: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench || echo ' (with uncommitted changes)')"
  echo "start: $(uptime)"
} | tee "$out/run-info.txt"
run() { # who round
  local who=$1 r=$2 dir
  dir=$([ "$who" = old ] && echo "$wt" || echo .)
  echo "== round $r: $who   load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/run-info.txt"
  (cd "$dir" && dotnet bench/bin/Release/net10.0/Adanns.Bench.dll "${common[@]}" "${pq4[@]}" --label adanns-ivf-pq4-rot \
      --out "$out/$who-r$r.jsonl") > "$out/$who-r$r-pq4.log" 2>&1
  (cd "$dir" && dotnet bench/bin/Release/net10.0/Adanns.Bench.dll "${common[@]}" "${ivf8[@]}" \
      --out "$out/$who-r$r.jsonl") > "$out/$who-r$r-ivf8.log" 2>&1
  grep -E '^adanns-ivf|cpu ' "$out/$who-r$r-pq4.log" "$out/$who-r$r-ivf8.log" | sed 's/^[^:]*://' | cut -c1-60,180- || true
}
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then run old "$r"; run new "$r"; else run new "$r"; run old "$r"; fi
done
echo "end: $(uptime)" | tee -a "$out/run-info.txt"
if [ -n "$lock" ]; then flock -u 9; fi
/usr/bin/python3 - "$out" "$rounds" <<'PY' | tee "$out/summary.md"
import json, os, re, statistics as st, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rows(who, r):
    """The run's points in output order, each with the CPU µs/query printed just before it."""
    pts = [json.loads(l) for l in open(os.path.join(out, f"{who}-r{r}.jsonl"))]
    cpu = []
    for part in ("pq4", "ivf8"):
        cpu += [float(m) for m in re.findall(r"\(cpu (\d+(?:\.\d+)?) us/query", open(os.path.join(out, f"{who}-r{r}-{part}.log")).read())]
    res = {}
    for i, p in enumerate(pts):
        key = (p["method"], tuple((k, p["params"][k]) for k in ("nlist", "dc", "ds", "shortlist", "nprobe") if k in p["params"]))
        res[key] = dict(recall=round(p["recall_at_k"], 4), qps=p["qps"], single=p.get("qps_single") or 0.0,
                        cpu=cpu[i] if len(cpu) == len(pts) else float("nan"))
    return res
data = {(w, r): rows(w, r) for w in ("old", "new") for r in range(1, rounds + 1)}
keys = list(data[("old", 1)])
fmt = lambda xs: " / ".join(f"{x:.3f}" for x in xs)
print(f"{rounds} rounds, ABBA order; ratios are new/old within each round (QPS: > 1 = new faster; CPU µs/query: < 1 = new cheaper).\n")
print("| point | recall@10 old | new | batch QPS old / new (median) | batch new/old per round | median | single QPS old / new (median) | single new/old per round | median | CPU µs/q old / new (median) | CPU new/old median |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
verdict = []
for key in keys:
    name = key[0] + " " + " ".join(f"{k}={v}" for k, v in key[1])
    o = [data[("old", r)][key] for r in range(1, rounds + 1)]
    n = [data[("new", r)][key] for r in range(1, rounds + 1)]
    ro = sorted({x["recall"] for x in o}); rn = sorted({x["recall"] for x in n})
    rb = [b["qps"] / a["qps"] for a, b in zip(o, n)]
    rs = [b["single"] / a["single"] for a, b in zip(o, n) if a["single"]]
    rc = [b["cpu"] / a["cpu"] for a, b in zip(o, n)]
    med = lambda xs, f: st.median(x[f] for x in xs)
    print(f"| {name} | {'/'.join(map(str, ro))} | {'/'.join(map(str, rn))} | {med(o,'qps'):,.0f} / {med(n,'qps'):,.0f} | {fmt(rb)} | **{st.median(rb):.3f}** "
          f"| {med(o,'single'):,.0f} / {med(n,'single'):,.0f} | {fmt(rs)} | **{st.median(rs):.3f}** | {med(o,'cpu'):.0f} / {med(n,'cpu'):.0f} | {st.median(rc):.3f} |")
    verdict.append((name, ro == rn, st.median(rb), st.median(rs)))
print()
print(f"recall identical at every point in every round: {all(v[1] for v in verdict)}")
worst = min(min(v[2], v[3]) for v in verdict)
print(f"lowest median new/old QPS (batch or single): {worst:.3f} -> within 5%: {worst >= 0.95}")
PY
