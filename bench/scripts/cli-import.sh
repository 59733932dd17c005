#!/usr/bin/env bash
# CLI import throughput, embedded (--db) and over gRPC (--server, the server run by `adanns serve` in another
# process on loopback), on the same generated file. Usage: bench/scripts/cli-import.sh [N] [DIM]
# Needs: dotnet build -c Release (src/Cli, bench). Writes its files under ${TMPDIR:-/tmp}/adanns-cli-import.
set -euo pipefail
N=${1:-200000}
DIM=${2:-384}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${TMPDIR:-/tmp}/adanns-cli-import
CLI="dotnet $ROOT/src/Cli/bin/Release/net10.0/adanns.dll"
rm -rf "$WORK" && mkdir -p "$WORK"
dotnet "$ROOT/bench/bin/Release/net10.0/Adanns.Bench.dll" gen-synth --n "$N" --dim "$DIM" --queries 100 --out "$WORK/data" > /dev/null
FILE="$WORK/data/base.fvecs"

echo "== embedded: import $N x $DIM into --db (no index training)"
$CLI import "$FILE" --collection bench --db "$WORK/db" --metric cosine --no-index --json

echo "== embedded: index training after the import (IVF256 default)"
$CLI import "$FILE" --collection bench --db "$WORK/db" --json

PORT=50931
$CLI serve --db "$WORK/server" --port $PORT --http-port $((PORT + 1)) > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  $CLI info --server "http://127.0.0.1:$PORT" --json > /dev/null 2>&1 && break
  sleep 0.2
done
echo "== gRPC: import $N x $DIM into --server (server in its own process, loopback)"
$CLI import "$FILE" --collection bench --server "http://127.0.0.1:$PORT" --metric cosine --no-index --json
echo "== search: 100 queries, k=10"
$CLI search "$WORK/data/query.fvecs" --collection bench --db "$WORK/db" --k 10 --json | head -c 200; echo
