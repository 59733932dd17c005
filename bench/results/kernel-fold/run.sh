#!/usr/bin/env bash
# The folded Int8Kernels.Dot512/Dot256 and HadamardKernels.Transform512/256 (a6fe06a) against the copies before it
# (OLD, default cbe7b68), in one process, alternating per round (bench/RESULTS.md, "Kernel folds"). Both versions are
# compiled into one program under namespaces Old / New. Usage: bench/results/kernel-fold/run.sh [OLD_COMMIT] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../../.." && pwd)
old=${1:-cbe7b68}; rounds=${2:-15}; tmp=$(mktemp -d)
for f in Int8 Hadamard; do
  git -C "$repo" show "$old:src/Kernels/${f}Kernels.cs" | sed 's/^namespace Adanns.Kernels;/namespace Old;\nusing Adanns.Kernels;/' > "$tmp/Old$f.cs"
  sed 's/^namespace Adanns.Kernels;/namespace New;\nusing Adanns.Kernels;/' "$repo/src/Kernels/${f}Kernels.cs" > "$tmp/New$f.cs"
done
cp "$here/Program.cs.txt" "$tmp/Program.cs"
cat > "$tmp/micro.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings><AllowUnsafeBlocks>true</AllowUnsafeBlocks><NoWarn>CS1591</NoWarn></PropertyGroup>
  <ItemGroup><ProjectReference Include="$repo/src/Kernels/Adanns.Kernels.csproj" /></ItemGroup>
</Project>
XML
(cd "$tmp" && MSBUILDDISABLENODEREUSE=1 dotnet build -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null)
flock /work/bench.lock bash -c "uptime; dotnet $tmp/bin/Release/net10.0/micro.dll $rounds; DOTNET_EnableAVX512=0 dotnet $tmp/bin/Release/net10.0/micro.dll $rounds; uptime"
