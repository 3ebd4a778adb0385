#!/usr/bin/env bash
# Two builds of the service, run alternately (docs/performance.md): on a shared machine one run moves by 10-20%, so a
# change is judged by pairs, the two builds one after the other, each started fresh with a new audit database and
# warmed up, rather than by two load runs hours apart.
#   benchmarks/compare.sh REV_A REV_B [pairs, default 5] [mode, default saturation]
#   REV: a git revision, published from a worktree, or "." for the working tree as it is
#   mode saturation: the typical request with wrk at 64 connections, the fatigue controls off (as load.sh measures it)
#   mode site: the fatigue controls on and 100,000 patients at random (load.sh's run "as a site runs it")
#   mode bursts: hey at 50 connections of 20 calls/s each, all started together: bursts of 50 (three 5-second runs)
#   mode together: both builds at once, each under its own wrk (one thread, 32 connections, 10 s), so that what the
#     machine's neighbours take falls on both builds in the same seconds; the ports, and which build starts first,
#     swap from pair to pair
#   ENV_B: settings for build B only ("NAME=value NAME=value"), to measure a runtime or service setting against the
#     same build without it, e.g. ENV_B="DOTNET_GCgen0size=0x40000000" benchmarks/compare.sh HEAD HEAD 4 together;
#     with ENV_B and PATCH_B unset, the same revision twice is the mode's control
#   PATCH_B: a patch (git apply) for build B only, to measure what a part of the service costs a call against the same
#     revision without it, e.g. PATCH_B=benchmarks/experiments/no-request-log.patch benchmarks/compare.sh HEAD HEAD 4;
#     REV_B must then be a revision, not "." (the patch goes on a worktree of it, never on the working tree); a relative
#     path is from the directory compare.sh is started in
# Each run prints the service's CPU per call in µs (/proc/PID/stat around the measurement) and the requests/s, or for
# bursts each run's p99. Both builds are on the shared framework (dotnet publish -c Release).
# Needs: wrk and hey (apt-get install wrk hey), curl, python3.
set -euo pipefail
patch_b=${PATCH_B:+$(realpath -m -- "$PATCH_B")} # before the cd below: a relative path is from the caller's directory
cd "$(dirname "$0")/.."
. benchmarks/common.sh
[ $# -ge 2 ] || { sed -n '2,/^# Needs/p' benchmarks/compare.sh >&2; exit 2; }
rev_a=$1 rev_b=$2 pairs=${3:-5} mode=${4:-saturation}
if [ -n "$patch_b" ]; then
  [ -f "$patch_b" ] || { echo "PATCH_B: no such file: $PATCH_B" >&2; exit 2; }
  [ "$rev_b" != . ] || { echo "PATCH_B needs REV_B to be a revision, not \".\": it is applied to a worktree of it" >&2; exit 2; }
fi
case $mode in saturation | site | bursts | together) ;; *) echo "mode is saturation, site, bursts or together" >&2; exit 2 ;; esac
read -ra settings_b <<< "${ENV_B:-}"
for setting in ${settings_b[@]+"${settings_b[@]}"}; do
  [[ $setting == *=* ]] || { echo "ENV_B takes NAME=value settings, not \"$setting\"" >&2; exit 2; }
done
# Both builds write Development's human-readable log line, whatever the caller exported: load.sh asks for the JSON
# lines a site writes with an empty template, which a build before the eighteenth round takes as a template and writes
# nothing.
unset Serilog__WriteTo__0__Args__outputTemplate
work=$(mktemp -d /tmp/cds-hooks-compare.XXXXXX)
url=http://127.0.0.1:5098/cds-services/medication-safety-order-sign

service= other=
trap 'kill $service $other 2>/dev/null || true; for w in "$work"/tree-*; do [ -d "$w" ] && git worktree remove --force "$w"; done; rm -rf "$work"' EXIT

# Each build's revision, and its source: the working tree for ".", else a worktree of the revision, with PATCH_B
# applied to build b's. Both sources first, so that a patch that does not apply stops the script before anything is built.
declare -A rev_of=([a]=$rev_a [b]=$rev_b) source_of=()
for build in a b; do
  source_of[$build]=.
  [ "${rev_of[$build]}" = . ] && continue
  source_of[$build]=$work/tree-$build
  git worktree add --detach "${source_of[$build]}" "${rev_of[$build]}" >/dev/null 2>&1
  if [ $build = b ] && [ -n "$patch_b" ]; then
    git -C "${source_of[b]}" apply "$patch_b" || { echo "PATCH_B does not apply to $rev_b" >&2; exit 1; }
  fi
done
for build in a b; do
  echo "building ${rev_of[$build]} (Release)..."
  dotnet publish "${source_of[$build]}/src/CdsHooks.Api" -c Release -o "$work/$build" >/dev/null
done
dotnet build benchmarks/CdsHooks.Benchmarks -c Release >/dev/null
dotnet benchmarks/CdsHooks.Benchmarks/bin/Release/net10.0/CdsHooks.Benchmarks.dll --write-requests "$work" http://127.0.0.1:5095/fhir
write_lua "$work"
patient=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["context"]["patientId"])' "$work/typical.json")
fatigue=false script=post.lua
if [ "$mode" = site ]; then fatigue=true script=patients.lua; fi

# Starts build $1 on port $2 with a new audit database of its own (and build b with ENV_B's settings); its process id
# in $started (not yet listening).
start() {
  local settings=()
  if [ "$1" = b ]; then settings=(${settings_b[@]+"${settings_b[@]}"}); fi
  rm -f "$work/audit-$1.db"*
  env ${settings[@]+"${settings[@]}"} ASPNETCORE_ENVIRONMENT=Development ASPNETCORE_URLS=http://127.0.0.1:$2 Playground__Enabled=false \
    Fatigue__Enabled=$fatigue Fatigue__RepeatWindow=00:00:00 Audit__ConnectionString="Data Source=$work/audit-$1.db" \
    Limits__PermitsPerSecond=1000000 Limits__Burst=1000000 dotnet "$work/$1/CdsHooks.Api.dll" >"$work/service-$1.log" 2>&1 &
  started=$!
}

# One run of build $1 ($2 is its label): started, warmed, measured, stopped.
run() {
  start "$1" 5098
  service=$started
  wait_live 5098
  PATIENT=$patient PATIENTS=100000 BODY="$work/typical.json" wrk -t2 -c32 -d10s -s "$work/$script" $url >/dev/null
  local line="$2:" before out
  if [ "$mode" = bursts ]; then
    hey -z 5s -c 50 -q 20 -m POST -T application/json -D "$work/typical.json" $url >/dev/null
    for _ in 1 2 3; do
      before=$(ticks $service)
      hey -z 5s -c 50 -q 20 -m POST -T application/json -D "$work/typical.json" $url >"$work/bursts.hey"
      line="$line $(cpu_since $service $before "$(hey_ok < "$work/bursts.hey")") µs/call p99 $(p99 <"$work/bursts.hey") ms;"
    done
  else
    before=$(ticks $service)
    out=$(PATIENT=$patient PATIENTS=100000 BODY="$work/typical.json" wrk -t2 -c64 -d10s -s "$work/$script" $url)
    line="$line $(cpu_since $service $before "$(echo "$out" | wrk_calls)") µs/call, $(echo "$out" | rps) requests/s, $(echo "$out" | awk '/Non-2xx/ { print $5 }' | grep . || echo 0) not 2xx"
  fi
  kill $service
  wait $service 2>/dev/null || true
  service=
  echo "$line"
}

# wrk on two services at once, each with one thread and 32 connections for 10 s: URL $1 into file $3, URL $2 into $4.
side_by_side() {
  BODY="$work/typical.json" wrk -t1 -c32 -d10s -s "$work/post.lua" "$1" >"$3" &
  local load=$!
  BODY="$work/typical.json" wrk -t1 -c32 -d10s -s "$work/post.lua" "$2" >"$4"
  wait $load
}

# Pair $1 of both builds at once: started, warmed and measured side by side, stopped. Which build starts first, and
# whose wrk starts first, changes from pair to pair with the ports: started one after the other, each build waiting
# for the first to listen, the same build measured 20-38% less CPU per call as the second in six pairs of six.
together() {
  local first=a second=b
  if [ $(($1 % 2)) = 0 ]; then first=b second=a; fi
  declare -A pid port=([$first]=5098 [$second]=5099) at before
  local b
  for b in $first $second; do
    start $b ${port[$b]}
    pid[$b]=$started
    at[$b]=http://127.0.0.1:${port[$b]}/cds-services/medication-safety-order-sign
  done
  service=${pid[a]} other=${pid[b]}
  for b in $first $second; do wait_live ${port[$b]}; done
  side_by_side "${at[$first]}" "${at[$second]}" /dev/null /dev/null
  for b in a b; do before[$b]=$(ticks ${pid[$b]}); done
  side_by_side "${at[$first]}" "${at[$second]}" "$work/$first.wrk" "$work/$second.wrk"
  echo "A: $(cpu_since ${pid[a]} ${before[a]} "$(wrk_calls < "$work/a.wrk")") µs/call, $(rps < "$work/a.wrk") requests/s;" \
    "B: $(cpu_since ${pid[b]} ${before[b]} "$(wrk_calls < "$work/b.wrk")") µs/call, $(rps < "$work/b.wrk") requests/s ($first first)"
  kill ${pid[a]} ${pid[b]}
  wait ${pid[a]} ${pid[b]} 2>/dev/null || true
  service= other=
}

echo "$mode, $pairs pairs: A = $rev_a, B = $rev_b${PATCH_B:+ patched with $PATCH_B}${ENV_B:+ with $ENV_B}"
for pair in $(seq 1 "$pairs"); do
  if [ "$mode" = together ]; then
    together "$pair"
  else
    run a A
    run b B
  fi
done
