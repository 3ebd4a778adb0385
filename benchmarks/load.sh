#!/usr/bin/env bash
# HTTP load benchmark on loopback (docs/performance.md): the service in Release against a minimal ASP.NET Core endpoint
# that reads the same body and answers a fixed card (benchmarks/Baseline), so that the result is a ratio that holds on
# a noisy machine. hey gives latency percentiles at a fixed rate, wrk the saturation throughput.
#   benchmarks/load.sh [seconds per measurement, default 20]
# Needs: wrk and hey (apt-get install wrk hey), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
work=$(mktemp -d /tmp/cds-hooks-load.XXXXXX)
service_url=http://127.0.0.1:5091/cds-services/medication-safety-order-sign
baseline_url=http://127.0.0.1:5092/cds-services/medication-safety-order-sign

echo "building (Release)..."
dotnet publish src/CdsHooks.Api -c Release -o "$work/api" >/dev/null
dotnet publish benchmarks/Baseline -c Release -o "$work/baseline" >/dev/null
dotnet build benchmarks/CdsHooks.Benchmarks -c Release >/dev/null
dotnet benchmarks/CdsHooks.Benchmarks/bin/Release/net10.0/CdsHooks.Benchmarks.dll --write-requests "$work"
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open(os.getenv("BODY"), "rb")
wrk.body = file:read("*a")
file:close()
LUA

# The service as a site runs it, with authentication off (Development) so that the load generator needs no tokens,
# request logs on, every card recorded (fatigue controls off, or the same request would be held back), and a rate
# limit above the load.
ASPNETCORE_ENVIRONMENT=Development ASPNETCORE_URLS=http://127.0.0.1:5091 Fatigue__Enabled=false Playground__Enabled=false \
  Audit__ConnectionString="Data Source=$work/audit.db" Limits__PermitsPerSecond=1000000 Limits__Burst=1000000 \
  dotnet "$work/api/CdsHooks.Api.dll" >"$work/service.log" 2>&1 &
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
trap 'kill $service $baseline 2>/dev/null || true' EXIT

p99() { awk '/99%% in|99% in/ {print $3 * 1000}' ; }
rps() { awk '/Requests\/sec/ {print $2}' ; }

echo "warming up..."
BODY="$work/typical.json" wrk -t2 -c32 -d10s -s "$work/post.lua" $service_url >/dev/null
BODY="$work/typical.json" wrk -t2 -c32 -d5s -s "$work/post.lua" $baseline_url >/dev/null

echo "typical request at 1,000 requests/s..."
typical_p99=$(hey -z "${seconds}s" -c 50 -q 20 -m POST -T application/json -D "$work/typical.json" $service_url | p99)
echo "heavy request at 200 requests/s..."
heavy_p99=$(hey -z "${seconds}s" -c 20 -q 10 -m POST -T application/json -D "$work/heavy.json" $service_url | p99)
echo "saturation..."
service_rps=$(BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/post.lua" $service_url | rps)
baseline_rps=$(BODY="$work/typical.json" wrk -t2 -c64 -d"${seconds}s" -s "$work/post.lua" $baseline_url | rps)
peak_mb=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' /proc/$service/status)
ratio=$(awk -v s="$service_rps" -v b="$baseline_rps" 'BEGIN { printf "%.0f", 100 * s / b }')

cat <<REPORT

| measure | result | target |
|---|---|---|
| typical request, p99 at 1,000 requests/s | ${typical_p99} ms | at most 5 ms |
| heavy request, p99 at 200 requests/s | ${heavy_p99} ms | below 50 ms |
| saturation, typical request | ${service_rps} requests/s | at least 8,000/s and 40% of the baseline |
| baseline endpoint (same body, fixed card), saturation | ${baseline_rps} requests/s | |
| service / baseline | ${ratio}% | at least 40% |
| first answered hook call after process start | ${startup_ms} ms | within 3,000 ms |
| peak working set | ${peak_mb} MB | below 160 MB |
REPORT
