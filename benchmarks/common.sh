# Shared by the load scripts (load.sh, compare.sh): the wrk scripts, and the helpers that start services and read
# the results. Sourced, not run.

# Writes the wrk scripts into directory $1: post.lua (the body in BODY, as it is), auth.lua (each call its own token)
# and patients.lua (each call for a patient drawn at random).
write_lua() {
cat > "$1/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open(os.getenv("BODY"), "rb")
wrk.body = file:read("*a")
file:close()
LUA
# The body (BODY) read once, and each of wrk's threads given its number (thread_number, from 0): they share no state.
local prelude
prelude=$(cat <<'LUA'
local file = io.open(os.getenv("BODY"), "rb")
local body = file:read("*a")
file:close()
local counter = 0
function setup(thread)
  thread:set("thread_number", counter)
  counter = counter + 1
end
LUA
)
# Authenticated calls: each request its own token (a replayed jti is refused). Thread k takes tokens START + k,
# START + k + THREADS, ...; a run that outgrows the file shows as non-2xx answers.
{ echo "$prelude"; cat <<'LUA'
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
function init(args)
  step = tonumber(os.getenv("THREADS"))
  i = tonumber(os.getenv("START")) + thread_number - step
end
function request()
  i = i + step
  local token = tokens[(i % #tokens) + 1]
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
LUA
} > "$1/auth.lua"
# Each call for a patient drawn at random among PATIENTS: the body with its patient id (PATIENT) replaced.
{ echo "$prelude"; cat <<'LUA'
local id = os.getenv("PATIENT"):gsub("%p", "%%%0")
local patients = tonumber(os.getenv("PATIENTS"))
function init(args)
  math.randomseed(os.time() * 16 + thread_number)
end
function request()
  local patient = "load-" .. math.random(1, patients)
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, (body:gsub(id, patient)))
end
LUA
} > "$1/patients.lua"
}

# Waits until the service on that loopback port answers its liveness endpoint.
wait_live() { for _ in $(seq 1 600); do [ "$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$1/health/live")" = 200 ] && break; sleep 0.05; done; }

p99() { awk '/99%% in|99% in/ {print $3 * 1000}' ; }
rps() { awk '/Requests\/sec/ {print $2}' ; }
# CPU time a process has used (user and system), in clock ticks; and µs of it per call since an earlier reading:
# cpu_since PID TICKS CALLS.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" ; }
cpu_since() { awk -v t="$(( $(ticks "$1") - $2 ))" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.0f", t * 1000000 / hz / n; else print "?" }' ; }
# The calls answered, from wrk's output, and the calls answered 200, from hey's.
wrk_calls() { awk '/requests in/ { print $1 }' ; }
hey_ok() { awk '/^ *\[200\]/ { print $2 }' ; }
