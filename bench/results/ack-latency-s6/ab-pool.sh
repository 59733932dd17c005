#!/bin/bash
cd /work/wt-rel20
B="dotnet bench/bin/Release/net10.0/Adanns.Bench.dll store steady --seconds 30 --warmup 5 --preload 50000 --delete-ratio 1 --spec IVF64,Rerank128"
for cfg in default pool16 default pool16; do
  echo "=== $cfg load $(cut -d' ' -f1-3 /proc/loadavg)"
  case $cfg in
    default) $B ;;
    pool16) $B --min-threads 16 ;;
  esac | grep -E "^acknowledged|^GC pauses|^thread pool|^search \(|^targets|slow write groups|their parts"
done
echo "=== end load $(cut -d' ' -f1-3 /proc/loadavg)"
