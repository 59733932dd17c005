#!/usr/bin/env bash
# Crash stress: CYCLES times, start the crash writer (WRITERS concurrent writers, batches of 4 with deletes) on one
# database, kill -9 it after a random 0.5–3 s, then verify: every acknowledged write present, no batch torn, no
# phantom, exact vectors and payloads (tests/Adanns.Storage.Writer/Program.cs). Exits non-zero on the first loss.
#   bench/scripts/kill-stress.sh [CYCLES=20] [WRITERS=8]
set -euo pipefail
CYCLES=${1:-20}
WRITERS=${2:-8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export MSBUILDDISABLENODEREUSE=1
dotnet build "$ROOT/tests/Adanns.Storage.Writer" -c Release -p:UseSharedCompilation=false -v q -nologo >/dev/null
DLL="$ROOT/tests/Adanns.Storage.Writer/bin/Release/net10.0/Adanns.Storage.Writer.dll"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for cycle in $(seq 1 "$CYCLES"); do
  dotnet "$DLL" write "$WORK/db" "$WORK/journal.txt" "$WRITERS" "$cycle" > "$WORK/writer.out" 2>&1 &
  pid=$!
  until grep -q ready "$WORK/writer.out" 2>/dev/null; do sleep 0.05; done
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.5 + rand() * 2.5 }')"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  printf 'cycle %2d: ' "$cycle"
  dotnet "$DLL" verify "$WORK/db" "$WORK/journal.txt" || { echo "acknowledged writes lost in cycle $cycle"; exit 1; }
done
echo "$CYCLES kill -9 cycles under $WRITERS writers: 0 acknowledged writes lost"
