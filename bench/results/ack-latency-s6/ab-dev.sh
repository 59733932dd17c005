#!/bin/bash
# A/B: managed WAL device (old) vs SyncLogDevice (new), churn 30 s each, alternated
for cfg in old new old new; do
  echo "=== $cfg load $(cut -d' ' -f1-3 /proc/loadavg)"
  dotnet /tmp/bench-$cfg/Adanns.Bench.dll store steady --seconds 30 --warmup 5 --preload 50000 --delete-ratio 1 --spec IVF64,Rerank128 | grep -E "^acknowledged|^GC pauses|^thread pool|^search \(|^targets|slow write groups|their parts"
done
echo "=== end load $(cut -d' ' -f1-3 /proc/loadavg)"
