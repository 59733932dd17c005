#!/usr/bin/env bash
# Packs what bench/gpu-check.sh needs on a GPU machine that has neither the .NET SDK nor network access (such as
# the project's H200 device machine): the Release builds of the bench and of tests/Adanns.Gpu.Tests, the xUnit
# console runner and this machine's .NET runtime, as one archive .gpu-bundle/adanns-gpu.tar.xz (git-ignored;
# carry the folder .gpu-bundle to the GPU machine). Run it where the SDK is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export MSBUILDDISABLENODEREUSE=1
nice -n 10 dotnet build bench -c Release -p:UseSharedCompilation=false -v q -nologo
nice -n 10 dotnet build tests/Adanns.Gpu.Tests -c Release -p:UseSharedCompilation=false -v q -nologo

DOTNET_HOME=$(dirname "$(readlink -f "$(command -v dotnet)")")
RUNTIME=$(ls -d "$DOTNET_HOME"/shared/Microsoft.NETCore.App/10.* | sort -V | tail -1)
XUNIT=$(ls -d "$HOME"/.nuget/packages/xunit.runner.console/*/tools/netcoreapp2.0 | sort -V | tail -1)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/dotnet/shared/Microsoft.NETCore.App" "$STAGE/app" "$STAGE/tests" "$STAGE/xunit"
cp "$DOTNET_HOME/dotnet" "$STAGE/dotnet/"
cp -r "$DOTNET_HOME/host" "$STAGE/dotnet/"
cp -r "$RUNTIME" "$STAGE/dotnet/shared/Microsoft.NETCore.App/"
cp -r bench/bin/Release/net10.0/. "$STAGE/app/"
cp -r tests/Adanns.Gpu.Tests/bin/Release/net10.0/. "$STAGE/tests/"
cp -r "$XUNIT"/. "$STAGE/xunit/"
# Native libraries for other platforms are dead weight on linux-x64 (and the carry limit is 64 MiB).
for d in "$STAGE/app" "$STAGE/tests"; do
  rm -rf "$d/arm64" "$d/x86" "$d/amd64"
  if [[ -d "$d/runtimes" ]]; then
    find "$d/runtimes" -mindepth 1 -maxdepth 1 ! -name linux-x64 ! -name unix -exec rm -rf {} +
  fi
done
mkdir -p .gpu-bundle
tar -C "$STAGE" -cf - . | xz -T0 -6 > .gpu-bundle/adanns-gpu.tar.xz
ls -l .gpu-bundle/adanns-gpu.tar.xz
