#!/usr/bin/env bash
# Device check for the GPU kernels (issue 8): runs the GPU test suite on the device, then `bench -- gpu`, which
# times flat search on 1M × 256 (effective GB/s against the device's bandwidth), k-means (device vs SIMD CPU) and
# IVF batch search (QPS), and checks the device's ids against the CPU path. Prints a table; with $OUT set, writes
# $OUT/gpu-check.md (the table) and $OUT/gpu-check.log (everything). Sized to finish in well under 8 minutes on an
# H200 with 16 cores.
#
#   bench/gpu-check.sh                  # CUDA: tests on the GPU (ADANNS_GPU_TEST_DEVICE=cuda), full sizes
#   bench/gpu-check.sh --device cpu     # no GPU: the same kernels on ILGPU's CPU simulator, tiny sizes (~40 s here)
#
# .NET: with the SDK on the PATH the script builds the Release configuration itself. Without it (the H200 device
# machine has neither the SDK nor network access) it uses .gpu-bundle/adanns-gpu.tar.xz, made beforehand by
# bench/gpu-bundle.sh on a machine with the SDK: the builds, the xUnit console runner and a .NET runtime.
set -euo pipefail

DEVICE=cuda
BANDWIDTH=4800   # H200 HBM3e, GB/s
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --bandwidth-gbs) BANDWIDTH="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (expected --device cuda|cpu, --bandwidth-gbs N)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in
  cuda)
    export ADANNS_GPU_TEST_DEVICE=cuda   # a missing GPU fails the tests instead of falling back
    BENCH_ARGS=(--device cuda --bandwidth-gbs "$BANDWIDTH") ;;
  cpu)
    unset ADANNS_GPU_TEST_DEVICE         # the tests' default: ILGPU's CPU accelerator
    BENCH_ARGS=(--device ilgpu-cpu --n 4000 --dim 64 --nq 64 --cpu-queries 64 --kmeans-k 16 --kmeans-iters 3
                --nlist 16 --nprobe 4 --ivf-queries 128 --bandwidth-gbs 8) ;;
  *) echo "--device must be cuda or cpu" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
RESULTS="${OUT:-$PWD/bench/out/gpu-check}"
mkdir -p "$RESULTS"
LOG="$RESULTS/gpu-check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
START=$SECONDS
step() { echo; echo "== $* ($((SECONDS - START)) s)"; }

step "machine"
uname -m; nproc
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; fi
if [[ "$DEVICE" == cuda ]]; then ldconfig -p 2>/dev/null | grep -m2 'libcuda\.so' || echo "warning: libcuda.so not in the loader cache"; fi

# ADANNS_GPU_CHECK_MODE=bundle forces the bundle even where an SDK exists (to try that path on a CPU machine).
if [[ "${ADANNS_GPU_CHECK_MODE:-}" != bundle ]] && command -v dotnet >/dev/null && dotnet --list-sdks 2>/dev/null | grep -q .; then
  step "build (SDK $(dotnet --version))"
  export MSBUILDDISABLENODEREUSE=1
  dotnet build bench -c Release -p:UseSharedCompilation=false -v q -nologo
  dotnet build tests/Adanns.Gpu.Tests -c Release -p:UseSharedCompilation=false -v q -nologo
  step "GPU tests on ${ADANNS_GPU_TEST_DEVICE:-ilgpu-cpu}"
  timeout 300 dotnet test tests/Adanns.Gpu.Tests -c Release --no-build --logger "console;verbosity=normal" | grep -E "Passed|Failed|Total|error" || exit 1
  BENCH=(dotnet bench/bin/Release/net10.0/Adanns.Bench.dll)
elif [[ -f .gpu-bundle/adanns-gpu.tar.xz ]]; then
  step "unpack .gpu-bundle (no SDK here)"
  B=/tmp/adanns-gpu
  rm -rf "$B"; mkdir -p "$B"
  tar -C "$B" -xJf .gpu-bundle/adanns-gpu.tar.xz
  export DOTNET_ROOT="$B/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1
  step "GPU tests on ${ADANNS_GPU_TEST_DEVICE:-ilgpu-cpu} (xUnit console runner)"
  # The runner targets netcoreapp2.0: let it roll forward onto the bundled .NET 10 runtime.
  (cd "$B/tests" && DOTNET_ROLL_FORWARD=Major timeout 300 "$B/dotnet/dotnet" "$B/xunit/xunit.console.dll" Adanns.Gpu.Tests.dll -verbose -nocolor)
  BENCH=("$B/dotnet/dotnet" "$B/app/Adanns.Bench.dll")
else
  echo "error: no .NET SDK on the PATH and no .gpu-bundle/adanns-gpu.tar.xz: run bench/gpu-bundle.sh where the SDK is and carry .gpu-bundle" >&2
  exit 1
fi

step "bench gpu ${BENCH_ARGS[*]}"
timeout 420 "${BENCH[@]}" gpu "${BENCH_ARGS[@]}" --out "$RESULTS/gpu-check.md"
step "done in $((SECONDS - START)) s; results in $RESULTS"
