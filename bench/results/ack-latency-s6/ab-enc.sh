#!/bin/bash
for cfg in old new old new; do
  echo "=== $cfg load $(cut -d' ' -f1-3 /proc/loadavg)"
  dotnet /tmp/bench-enc-$cfg/Adanns.Bench.dll store steady --seconds 20 --warmup 3 --preload 50000 --delete-ratio 1 --spec IVF64,Rerank128 | grep -E "^acknowledged|^allocated|^GC pauses in|^targets"
done
echo "=== end load $(cut -d' ' -f1-3 /proc/loadavg)"
