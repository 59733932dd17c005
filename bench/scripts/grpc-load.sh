#!/usr/bin/env bash
# gRPC server measurements (issue 7): starts the server (demo collection) as its own process on loopback, then
#  1. single-query p50, gRPC vs in-process (self-hosted server, same collection, one call in flight),
#  2. throughput with 32 requests in flight for 10 s,
#  3. 64 concurrent clients for 60 s (must be 0 errors, server still Serving),
#  4. 10,000 malformed requests (must all be answered with an error status; server still Serving).
# Usage: bench/scripts/grpc-load.sh [OUTDIR]   (from the repository root; builds Release first)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-bench/out/grpc}
mkdir -p "$out"
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
dotnet build bench -c Release -p:UseSharedCompilation=false -v q -nologo >/dev/null
bench="dotnet bench/bin/Release/net10.0/Adanns.Bench.dll"
server="dotnet src/Server/bin/Release/net10.0/Adanns.Server.dll"
data=$(mktemp -d)
grpc=50651 http=50652
$server --Adanns:DataDirectory="$data" --Adanns:GrpcPort=$grpc --Adanns:HttpPort=$http >"$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && break
  sleep 1
done
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. single query, gRPC vs in-process (self-hosted)"
$bench load --self-host --compare-inproc --clients 1 --seconds 1 --warmup 0 | tee "$out/compare.txt"
echo "== 2. 32 in flight, 10 s"
$bench load --address "http://127.0.0.1:$grpc" --clients 32 --seconds 10 --warmup 5 | tee "$out/load32.txt"
echo "== 2b. 32 in flight, 10 s, cheap configuration (nprobe 2)"
$bench load --address "http://127.0.0.1:$grpc" --clients 32 --seconds 10 --warmup 5 --nprobe 2 | tee "$out/load32-cheap.txt"
echo "== 3. 64 clients, 60 s"
$bench load --address "http://127.0.0.1:$grpc" --clients 64 --seconds 60 | tee "$out/load64.txt"
echo "== 4. 10,000 malformed requests"
$bench fuzz --address "http://127.0.0.1:$grpc" --requests 10000 | tee "$out/fuzz.txt"
kill -0 $pid && echo "server process $pid still running; /healthz: $(curl -s "http://127.0.0.1:$http/healthz")"
