#!/usr/bin/env bash
# Crash stress: CYCLES times, start the crash writer (WRITERS concurrent writers, batches of 4 with deletes) on one
# database, kill -9 it after a random 0.5–3 s, then verify: every acknowledged write present, no batch torn, no
# phantom, exact vectors and payloads (tests/Adanns.Storage.Writer/Program.cs). Exits non-zero on the first loss.
# SPEC is the collection's index spec (IVF16, or a PQ spec such as IVF16@16,PQ8@32,Rerank32); the writer also replaces
# acknowledged batches, and each cycle reports whether the kill hit a checkpoint or a training in flight.
# KILL_AT=checkpoint (or training) waits, after the random delay, up to 5 s for one to be in flight before killing.
#   [KILL_AT=checkpoint] bench/scripts/kill-stress.sh [CYCLES=20] [WRITERS=8] [SPEC=IVF16]
set -euo pipefail
CYCLES=${1:-20}
WRITERS=${2:-8}
SPEC=${3:-IVF16}
IN_CKPT=0
IN_TRAIN=0
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export MSBUILDDISABLENODEREUSE=1
dotnet build "$ROOT/tests/Adanns.Storage.Writer" -c Release -p:UseSharedCompilation=false -v q -nologo >/dev/null
DLL="$ROOT/tests/Adanns.Storage.Writer/bin/Release/net10.0/Adanns.Storage.Writer.dll"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for cycle in $(seq 1 "$CYCLES"); do
  ADANNS_CRASH_STATUS=1 dotnet "$DLL" write "$WORK/db" "$WORK/journal.txt" "$WRITERS" "$cycle" "$SPEC" > "$WORK/writer.out" 2>&1 &
  pid=$!
  until grep -q ready "$WORK/writer.out" 2>/dev/null; do sleep 0.05; done
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.5 + rand() * 2.5 }')"
  if [ -n "${KILL_AT:-}" ]; then
    for _ in $(seq 1 500); do
      grep '^S ' "$WORK/writer.out" | tail -1 | grep -q "$KILL_AT=1" && break
      sleep 0.01
    done
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  state=$(grep '^S ' "$WORK/writer.out" | tail -1 || true)
  case "$state" in *checkpoint=1*) IN_CKPT=$((IN_CKPT + 1)) ;; esac
  case "$state" in *training=1*) IN_TRAIN=$((IN_TRAIN + 1)) ;; esac
  printf 'cycle %2d (killed at: %s): ' "$cycle" "${state#S }"
  dotnet "$DLL" verify "$WORK/db" "$WORK/journal.txt" || { echo "acknowledged writes lost in cycle $cycle"; exit 1; }
done
echo "$CYCLES kill -9 cycles under $WRITERS writers, spec $SPEC: 0 acknowledged writes lost; kills during a checkpoint: $IN_CKPT, during a training: $IN_TRAIN"
