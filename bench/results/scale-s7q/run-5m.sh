#!/usr/bin/env bash
cd /work/main
echo "start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git rev-parse --short HEAD)"
dotnet bench/bin/Release/net10.0/Adanns.Bench.dll store scale --n 5000000 --dim 384 --train-at 100000 --queries 100 &
pid=$!
peak=0
while kill -0 $pid 2>/dev/null; do
  rss=$(ps -o rss= -p $pid 2>/dev/null | tr -d ' '); rss=${rss:-0}
  [ "$rss" -gt "$peak" ] && peak=$rss
  if [ "$rss" -gt 18000000 ]; then echo "WATCHDOG: RSS ${rss} kB > 18 GB at $(date -u +%T), killing"; kill -9 $pid; fi
  sleep 2
done
wait $pid; echo "exit $? peak RSS (watchdog samples) ${peak} kB end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
