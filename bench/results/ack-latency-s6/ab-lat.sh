#!/bin/bash
cd /work/wt-rel20
B="dotnet bench/bin/Release/net10.0/Adanns.Bench.dll store steady --seconds 40 --warmup 5 --preload 50000 --delete-ratio 1 --spec IVF64,Rerank128"
for cfg in interactive sustained interactive sustained; do
  echo "=== $cfg load $(cut -d' ' -f1-3 /proc/loadavg)"
  case $cfg in
    interactive) $B ;;
    sustained) $B --gc-latency SustainedLowLatency ;;
  esac | grep -E "^acknowledged|^GC pauses|^gen-2|^search \(|^targets|slow write groups|their parts"
done
echo "=== end load $(cut -d' ' -f1-3 /proc/loadavg)"
