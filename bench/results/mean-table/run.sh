#!/usr/bin/env bash
# Add throughput with a search after each write, on a plain spec whose probes rank the running list means
# (bench/RESULTS.md, "Mean table"): the mean-table code of OLD (default 9840292, before the per-list rewrite) vs this
# checkout, three rounds alternating the two processes. Program.cs.txt is the program (a .txt so the bench project does
# not compile it). Usage: bench/results/mean-table/run.sh [OLD_COMMIT]   (takes /work/bench.lock for the timed part)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../../.." && pwd)
old=${1:-9840292}; tmp=$(mktemp -d)
git -C "$repo" worktree add -q --detach "$tmp/old-tree" "$old"
trap 'git -C "$repo" worktree remove --force "$tmp/old-tree"' EXIT
cp "$here/Program.cs.txt" "$tmp/Program.cs"
for w in old new; do
  src=$([ $w = old ] && echo "$tmp/old-tree" || echo "$repo"); mkdir -p "$tmp/$w"
  cat > "$tmp/$w/mean.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
  <ItemGroup><Compile Include="../Program.cs" /><ProjectReference Include="$src/src/Engine/Adanns.Engine.csproj" /></ItemGroup>
</Project>
XML
  (cd "$tmp/$w" && MSBUILDDISABLENODEREUSE=1 dotnet build -c Release -v quiet -nologo -p:UseSharedCompilation=false >/dev/null)
done
flock /work/bench.lock bash -c "uptime; for r in 1 2 3; do for w in old new; do echo -n \"\$w r\$r: \"; dotnet $tmp/\$w/bin/Release/net10.0/mean.dll 'IVF1024@32,Scan64,SQ8' 3000; done; done; uptime"
