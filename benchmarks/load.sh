#!/usr/bin/env bash
# HTTP load benchmark on loopback (docs/performance.md): the service in Release against a minimal ASP.NET Core endpoint
# that reads the same body and answers a fixed card (benchmarks/Baseline), so that the result is a ratio that holds on
# a noisy machine. hey gives latency percentiles at a fixed rate, wrk the saturation throughput.
#   benchmarks/load.sh [seconds per measurement, default 20]
#   BUILD=image (the default): the service as the container image builds it, self-contained with trimmed frameworks
#   BUILD=shared: on the shared framework, as `dotnet run` and a plain `dotnet publish` run it
#   BUILD=r2r (or R2R=1): on the shared framework, published ReadyToRun (precompiled)
# Needs: wrk and hey (apt-get install wrk hey), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/common.sh
seconds=${1:-20}
work=$(mktemp -d /tmp/cds-hooks-load.XXXXXX)
service_url=http://127.0.0.1:5091/cds-services/medication-safety-order-sign
baseline_url=http://127.0.0.1:5092/cds-services/medication-safety-order-sign

# Every instance of the service below runs in Development only so that authentication can be off (the load generator
# has no tokens) or configured by hand; its log is written as a site writes it, appsettings.json's compact JSON lines,
# not Development's human-readable line (an empty template is none). That line renders every property of every
# request's event as text, which a site never pays (docs/performance.md, eighteenth round).
export Serilog__WriteTo__0__Args__outputTemplate=

build=${BUILD:-$([ -n "${R2R:-}" ] && echo r2r || echo image)}
echo "building (Release, $build)..."
case $build in
  image) dotnet publish src/CdsHooks.Api -c Release --use-current-runtime --self-contained -p:PublishTrimmed=true -o "$work/api" >/dev/null
         run_service() { exec "$work/api/CdsHooks.Api"; } ;;
  shared) dotnet publish src/CdsHooks.Api -c Release -o "$work/api" >/dev/null
         run_service() { exec dotnet "$work/api/CdsHooks.Api.dll"; } ;;
  r2r)   dotnet publish src/CdsHooks.Api -c Release --use-current-runtime --self-contained false -p:PublishReadyToRun=true -o "$work/api" >/dev/null
         run_service() { exec dotnet "$work/api/CdsHooks.Api.dll"; } ;;
  *) echo "BUILD is image, shared or r2r" >&2; exit 2 ;;
esac
dotnet publish benchmarks/Baseline -c Release -o "$work/baseline" >/dev/null
dotnet publish benchmarks/SlowFhirServer -c Release -o "$work/fhir" >/dev/null
dotnet build benchmarks/CdsHooks.Benchmarks -c Release >/dev/null
dotnet benchmarks/CdsHooks.Benchmarks/bin/Release/net10.0/CdsHooks.Benchmarks.dll --write-requests "$work" http://127.0.0.1:5095/fhir
write_lua "$work"

# Every process started here is stopped when the script ends, however it ends.
service= baseline= fhir= pages= cold= authenticated= fatigue=
trap 'kill $service $baseline $fhir $pages $cold $authenticated $fatigue 2>/dev/null || true' EXIT

# The service as a site runs it, with authentication off (Development) so that the load generator needs no tokens,
# request logs on, every card recorded (fatigue controls off, or the same request would be held back), and a rate
# limit above the load.
ASPNETCORE_ENVIRONMENT=Development ASPNETCORE_URLS=http://127.0.0.1:5091 Fatigue__Enabled=false Playground__Enabled=false \
  Fhir__AllowedServers__0=http://127.0.0.1:5093/fhir Fhir__AllowedServers__1=http://127.0.0.1:5095/fhir \
  Audit__ConnectionString="Data Source=$work/audit.db" Limits__PermitsPerSecond=1000000 Limits__Burst=1000000 \
  run_service >"$work/service.log" 2>&1 &
service=$!
start=$(date +%s%N)
for _ in $(seq 1 1500); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$work/typical.json" $service_url)" = 200 ] && break
  sleep 0.02
done
startup_ms=$(( ($(date +%s%N) - start) / 1000000 ))

ASPNETCORE_URLS=http://127.0.0.1:5092 dotnet "$work/baseline/Baseline.dll" >/dev/null 2>&1 &
baseline=$!
for _ in $(seq 1 600); do curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @"$work/typical.json" $baseline_url && break; sleep 0.05; done
ASPNETCORE_URLS=http://127.0.0.1:5093 dotnet "$work/fhir/SlowFhirServer.dll" --delay-ms 100 --request "$work/typical.json" >/dev/null 2>&1 &
fhir=$!
# The heavy request's paged search: its first page prefetched, the other two from this server, without delay.
ASPNETCORE_URLS=http://127.0.0.1:5095 dotnet "$work/fhir/SlowFhirServer.dll" --delay-ms 0 --request "$work/heavy-paged.json" --pages "$work/heavy-pages.json" >"$work/pages.log" 2>&1 &
pages=$!

# hey's answers other than 200, and its errors (timeouts, refused connections): a degraded path must not pass for a fast one.
not_ok() { awk '/^Status code distribution/ { s = 1; e = 0 } /^Error distribution/ { e = 1; s = 0 }
  /^ *\[[0-9]+\]/ { gsub(/[\[\]]/, "", $1); if (s && $1 != 200) n += $2; if (e) n += $1 } END { print n + 0 }' ; }
# The median of its arguments (the middle one; of an even count, the lower middle one).
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }' ; }
# The card summaries a service gives for a request body, one line: the paged request must give the heavy one's.
summaries() { curl -s -X POST -H 'Content-Type: application/json' --data-binary @"$2" "$1" | python3 -c 'import json, sys; print("|".join(c["summary"] for c in json.load(sys.stdin)["cards"]))' ; }

echo "warming up..."
BODY="$work/typical.json" wrk -t2 -c32 -d10s -s "$work/post.lua" $service_url >/dev/null
BODY="$work/typical.json" wrk -t2 -c32 -d5s -s "$work/post.lua" $baseline_url >/dev/null
# And in bursts, as compare.sh warms (5 s there): wrk keeps its connections, hey opens new ones, and the runtime was
# still compiling the connections' set-up and teardown in the 5 s of bursts after wrk and 3 s of hey (its compiler
# thread took about a seventh of the service's CPU ticks there), and not in the runs after (docs/performance.md,
# twelfth round). So 8 s.
hey -z 8s -c 50 -q 20 -m POST -T application/json -D "$work/typical.json" $service_url >/dev/null
hey -z 8s -c 50 -q 20 -m POST -T application/json -D "$work/typical.json" $baseline_url >/dev/null

echo "typical request at 1,000 requests/s..."
# hey paces each connection with its own ticker, all started together: 50 connections at 20/s send bursts of 50 every
# 50 ms, 10 connections at 100/s bursts of 10 every 10 ms. Both are 1,000 requests/s; the first is the harsher.
# The service's CPU per call in this run as well: in bursts it is more than at saturation (threads wake for each
# burst), and a burst's p99 is about its whole CPU on the two cores.
before=$(ticks $service)
hey -z "${seconds}s" -c 50 -q 20 -m POST -T application/json -D "$work/typical.json" $service_url > "$work/bursts.hey"
burst_cpu=$(cpu_since $service $before "$(hey_ok < "$work/bursts.hey")")
typical_p99=$(p99 < "$work/bursts.hey")
typical_p99_10=$(hey -z "${seconds}s" -c 10 -q 100 -m POST -T application/json -D "$work/typical.json" $service_url | p99)
# The baseline in the same bursts: what reading the body and answering a fixed card costs in them, on this machine.
before=$(ticks $baseline)
hey -z "${seconds}s" -c 50 -q 20 -m POST -T application/json -D "$work/typical.json" $baseline_url > "$work/baseline-bursts.hey"
baseline_burst_cpu=$(cpu_since $baseline $before "$(hey_ok < "$work/baseline-bursts.hey")")
baseline_p99=$(p99 < "$work/baseline-bursts.hey")
echo "heavy request at 200 requests/s..."
heavy_p99=$(hey -z "${seconds}s" -c 20 -q 10 -m POST -T application/json -D "$work/heavy.json" $service_url | p99)
# The paged request, checked first: followed to its last page it must give the heavy request's cards (a refused or
# failed page would add a "Not fully checked" card and still answer 200).
for _ in $(seq 1 200); do curl -s -o /dev/null http://127.0.0.1:5095/count && break; sleep 0.05; done
if [ "$(summaries $service_url "$work/heavy-paged.json")" != "$(summaries $service_url "$work/heavy.json")" ]; then
  echo "the paged heavy request does not give the heavy request's cards: see $work/pages.log and $work/service.log" >&2
  exit 1
fi
# Warmed like the rest, then measured: the same patient and token, so the pages come from the service's cache, as for
# order-select then order-sign.
hey -z 3s -c 20 -q 10 -m POST -T application/json -D "$work/heavy-paged.json" $service_url >/dev/null
heavy_paged_warm=$(curl -s http://127.0.0.1:5095/count)
hey -z "${seconds}s" -c 20 -q 10 -m POST -T application/json -D "$work/heavy-paged.json" $service_url > "$work/paged.hey"
heavy_paged_p99=$(p99 < "$work/paged.hey")
heavy_paged_failed=$(not_ok < "$work/paged.hey")
heavy_paged_queries=$(( $(curl -s http://127.0.0.1:5095/count) - heavy_paged_warm ))
# Calls fetching their two pages: a second instance that caches fetched data for a millisecond, as for a new patient
# (calls that overlap within that millisecond still share an answer).
echo "heavy request with paged prefetch, fetching its pages..."
ASPNETCORE_ENVIRONMENT=Development ASPNETCORE_URLS=http://127.0.0.1:5096 Fatigue__Enabled=false Playground__Enabled=false \
  Fhir__AllowedServers__0=http://127.0.0.1:5095/fhir Fhir__CacheDuration=00:00:00.001 \
  Audit__ConnectionString="Data Source=$work/audit-cold.db" Limits__PermitsPerSecond=1000000 Limits__Burst=1000000 \
  run_service >"$work/service-cold.log" 2>&1 &
cold=$!
cold_url=http://127.0.0.1:5096/cds-services/medication-safety-order-sign
wait_live 5096
hey -z 10s -c 20 -q 10 -m POST -T application/json -D "$work/heavy-paged.json" $cold_url >/dev/null
cold_before=$(curl -s http://127.0.0.1:5095/count)
hey -z "${seconds}s" -c 20 -q 10 -m POST -T application/json -D "$work/heavy-paged.json" $cold_url > "$work/cold.hey"
cold_queries=$(( $(curl -s http://127.0.0.1:5095/count) - cold_before ))
cold_calls=$(hey_ok < "$work/cold.hey")
cold_p99=$(p99 < "$work/cold.hey")
cold_failed=$(not_ok < "$work/cold.hey")
kill $cold 2>/dev/null || true
wait $cold 2>/dev/null || true
cold=
echo "saturation..."
# Three pairs, the service then the baseline in each: the ratio is judged by the median of the pairs' ratios. One pair
# gave 31% to 45% for the same code within an hour and a half (docs/performance.md, seventeenth round), the machine's neighbours
# taking more in one run than in the next; a pair is two runs next to each other, and the median passes over the pair
# that the noise fell on.
pair_rps=() pair_baseline=() pair_ratio=() pair_cpu=()
for pair in 1 2 3; do
  before=$(ticks $service)
  BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/post.lua" $service_url > "$work/saturation-$pair.wrk"
  pair_cpu+=("$(cpu_since $service $before "$(wrk_calls < "$work/saturation-$pair.wrk")")")
  pair_rps+=("$(rps < "$work/saturation-$pair.wrk")")
  pair_baseline+=("$(BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/post.lua" $baseline_url | rps)")
  # A run that gave no rate (wrk failed) must stop the script, not sort as a zero that the median passes over.
  if ! awk -v s="${pair_rps[-1]}" -v b="${pair_baseline[-1]}" 'BEGIN { exit !(s > 0 && b > 0) }'; then
    echo "saturation pair $pair gave no rate (service '${pair_rps[-1]}', baseline '${pair_baseline[-1]}')" >&2
    exit 1
  fi
  pair_ratio+=("$(awk -v s="${pair_rps[-1]}" -v b="${pair_baseline[-1]}" 'BEGIN { printf "%.1f", 100 * s / b }')")
done
service_rps=$(median "${pair_rps[@]}")
baseline_rps=$(median "${pair_baseline[@]}")
saturation_cpu=$(median "${pair_cpu[@]}")
ratio=$(median "${pair_ratio[@]}")
# FHIR fallback: the typical request without its prefetch, the service fetching the patient's data from a FHIR
# server that takes 100 ms per query (5 queries). A new patient each call; then the last patient again.
for _ in $(seq 1 200); do curl -s -o /dev/null http://127.0.0.1:5093/count && break; sleep 0.05; done
fallback_ms=()
for i in $(seq 1 21); do
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); del r['prefetch']; r['fhirServer']='http://127.0.0.1:5093/fhir'; r['fhirAuthorization']={'access_token': 'benchmark-token', 'token_type': 'Bearer', 'expires_in': 300, 'scope': 'patient/Patient.read patient/MedicationRequest.read patient/MedicationStatement.read patient/Condition.read', 'subject': 'cds-service'}; r['context']['patientId']='bench-'+sys.argv[2]; print(json.dumps(r))" \
    "$work/typical.json" "$i" > "$work/fallback.json"
  fallback_ms+=("$(curl -s -o /dev/null -w '%{time_total}' -X POST -H 'Content-Type: application/json' --data-binary @"$work/fallback.json" $service_url | awk '{printf "%.0f", $1 * 1000}')")
done
fallback_median=$(median "${fallback_ms[@]:1}")
queries_before=$(curl -s http://127.0.0.1:5093/count)
again_ms=$(curl -s -o /dev/null -w '%{time_total}' -X POST -H 'Content-Type: application/json' --data-binary @"$work/fallback.json" $service_url | awk '{printf "%.0f", $1 * 1000}')
queries_again=$(( $(curl -s http://127.0.0.1:5093/count) - queries_before ))

peak_mb=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' /proc/$service/status)

# Authenticated saturation: the same service with authentication on, as Production runs it (RS384 tokens from a
# trusted client with an inline JWKS, each with a fresh jti recorded against replay). Tokens live 5 minutes, so they
# are made just before; the warm-up and the measurement use different ones, room for 12,000 calls a second each (at
# 6,000 a second, the 20-second warm-up used the first of the measurement's tokens, which were then refused as replays).
echo "authenticated saturation..."
auth_url=http://127.0.0.1:5094/cds-services/medication-safety-order-sign
warm_seconds=20
warm_tokens=$(( warm_seconds * 12000 ))
dotnet benchmarks/CdsHooks.Benchmarks/bin/Release/net10.0/CdsHooks.Benchmarks.dll --write-tokens "$work" $(( warm_tokens + seconds * 12000 )) $auth_url
ASPNETCORE_ENVIRONMENT=Development ASPNETCORE_URLS=http://127.0.0.1:5094 Fatigue__Enabled=false Playground__Enabled=false \
  Authentication__Enabled=true Authentication__TrustedClients__0__Issuer=https://ehr.load-test.example \
  Authentication__TrustedClients__0__Jwks="$(cat "$work/jwks.json")" \
  Audit__ConnectionString="Data Source=$work/audit-auth.db" Limits__PermitsPerSecond=1000000 Limits__Burst=1000000 \
  run_service >"$work/service-auth.log" 2>&1 &
authenticated=$!
wait_live 5094
# As long a warm-up as the other instance had before its saturation run: a fresh instance is still compiling.
THREADS=2 START=0 TOKENS="$work/tokens.txt" BODY="$work/typical.json" wrk -t2 -c32 -d${warm_seconds}s -s "$work/auth.lua" $auth_url >/dev/null
auth_out=$(THREADS=2 START=$warm_tokens TOKENS="$work/tokens.txt" BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/auth.lua" $auth_url)
auth_rps=$(echo "$auth_out" | rps)
auth_refused=$(echo "$auth_out" | awk '/Non-2xx/ {print $5}')
# The same script against the service without authentication: what wrk's per-request Lua allows, for the ratio.
auth_reference_rps=$(THREADS=2 START=0 TOKENS="$work/tokens.txt" BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/auth.lua" $service_url | rps)
kill $authenticated 2>/dev/null || true
wait $authenticated 2>/dev/null || true
authenticated=

# As a site runs it: the alert-fatigue controls on (they read the patient's card history on every call that has cards)
# and 100,000 patients at random (their records land at scattered places of the history index). No repeat window, so
# that a patient drawn twice still has every card shown and recorded. Against the same wrk script on the instance with
# the controls off, whose Lua costs wrk the same. A failing audit trail still answers 200 (the cards unfiltered), so
# its errors are counted from the log.
echo "saturation with the fatigue controls on, 100,000 patients..."
fatigue_url=http://127.0.0.1:5097/cds-services/medication-safety-order-sign
patient=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["context"]["patientId"])' "$work/typical.json")
ASPNETCORE_ENVIRONMENT=Development ASPNETCORE_URLS=http://127.0.0.1:5097 Playground__Enabled=false Fatigue__RepeatWindow=00:00:00 \
  Audit__ConnectionString="Data Source=$work/audit-fatigue.db" Limits__PermitsPerSecond=1000000 Limits__Burst=1000000 \
  run_service >"$work/service-fatigue.log" 2>&1 &
fatigue=$!
wait_live 5097
PATIENT=$patient PATIENTS=100000 BODY="$work/typical.json" wrk -t2 -c32 -d${warm_seconds}s -s "$work/patients.lua" $fatigue_url >/dev/null
before=$(ticks $fatigue)
fatigue_out=$(PATIENT=$patient PATIENTS=100000 BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/patients.lua" $fatigue_url)
fatigue_cpu=$(cpu_since $fatigue $before "$(echo "$fatigue_out" | wrk_calls)")
fatigue_rps=$(echo "$fatigue_out" | rps)
fatigue_failed=$(echo "$fatigue_out" | awk '/Non-2xx/ {print $5}')
fatigue_audit_errors=$(grep -c -e 'Audit trail failed' -e 'Card records not written' "$work/service-fatigue.log" || true)
before=$(ticks $service)
fatigue_reference_out=$(PATIENT=$patient PATIENTS=100000 BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/patients.lua" $service_url)
fatigue_reference_cpu=$(cpu_since $service $before "$(echo "$fatigue_reference_out" | wrk_calls)")
fatigue_reference_rps=$(echo "$fatigue_reference_out" | rps)

cat <<REPORT

The service built as: ${build}

| measure | result | target |
|---|---|---|
| typical request, p99 at 1,000 requests/s (50 connections at 20/s: bursts of 50) | ${typical_p99} ms (the service's CPU: ${burst_cpu} µs per call) | at most 5 ms |
| typical request, p99 at 1,000 requests/s (10 connections at 100/s: bursts of 10) | ${typical_p99_10} ms | at most 5 ms |
| baseline endpoint, p99 in the same bursts of 50 | ${baseline_p99} ms (its CPU: ${baseline_burst_cpu} µs per call) | |
| heavy request, p99 at 200 requests/s | ${heavy_p99} ms | below 50 ms |
| heavy request with paged prefetch, p99 at 200 requests/s, pages from the cache (${heavy_paged_warm} queries while warming, ${heavy_paged_queries} after; ${heavy_paged_failed} answers not 200) | ${heavy_paged_p99} ms | below 50 ms |
| heavy request with paged prefetch, p99 at 200 requests/s, fetching its 2 pages (cache of 1 ms: ${cold_queries} queries for ${cold_calls:-0} calls; ${cold_failed} answers not 200) | ${cold_p99} ms | below 50 ms |
| saturation, typical request, median of 3 runs (${pair_rps[*]}) | ${service_rps} requests/s (the service's CPU: ${saturation_cpu} µs per call; ${pair_cpu[*]}) | at least 8,000/s and 40% of the baseline |
| saturation, typical request, authenticated (a fresh JWT per call) | ${auth_rps} requests/s, ${auth_refused:-0} refused | |
| the same wrk script (a request built per call) without authentication | ${auth_reference_rps} requests/s | |
| saturation as a site runs it: fatigue controls on, 100,000 patients at random | ${fatigue_rps} requests/s (${fatigue_cpu} µs per call), ${fatigue_failed:-0} not 200, ${fatigue_audit_errors} audit errors logged | |
| the same wrk script with the fatigue controls off | ${fatigue_reference_rps} requests/s (${fatigue_reference_cpu} µs per call) | |
| baseline endpoint (same body, fixed card), saturation, median of 3 runs (${pair_baseline[*]}), each after the service's | ${baseline_rps} requests/s | |
| service / baseline, median of the 3 pairs' ratios (${pair_ratio[*]}%; not the two medians above divided) | ${ratio}% | at least 40% |
| first answered hook call after process start | ${startup_ms} ms | within 3,000 ms |
| peak working set | ${peak_mb} MB | below 160 MB |
| FHIR fallback, 5 queries of 100 ms each: median call (20 new patients) | ${fallback_median} ms | close to 100 ms, not 500 ms |
| the same patient again within the cache window: FHIR queries, call time | ${queries_again} queries, ${again_ms} ms | no query |
REPORT
