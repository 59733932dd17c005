#!/usr/bin/env bash
set -uo pipefail
cd /work/main
echo "commit $(git rev-parse --short HEAD)  start $(date -u +%T)  load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== ack-latency  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
bench/scripts/ack-latency.sh bench/out/ack-latency-s7q > /tmp/ack7q.txt 2>&1; echo "ack exit $?"
echo "== synth1m  $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
bench/scripts/auto-synth1m.sh /tmp/adanns-synth-1m bench/out/auto-synth1m-s7 > /tmp/synth7.txt 2>&1; echo "synth exit $?"
echo "end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
