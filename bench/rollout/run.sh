#!/usr/bin/env bash
# Rollout assignment load bench: wrk against POST /v1/assign/{model} with an active rollout, for new installs (a
# random install id per request: every request upserts a row of rollout_assignments) and for repeated polls
# (2,000 installs asking again: nothing to write), next to POST /v1/resolve/{model} (no writes) as the in-run
# reference, on SQLite and on PostgreSQL. Needs wrk and postgresql (Debian packages).
# Usage: bench/rollout/run.sh [seconds-per-run] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
runs=${2:-3}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
dotnet build src/OnDevice.Cli -c Release -nologo -v quiet >/dev/null
cli="dotnet src/OnDevice.Cli/bin/Release/net10.0/ondevice.dll"
. bench/lib/servers.sh
bench_workdir rollout

$cli keys init "$work/keys" >/dev/null
for v in 1.0 2.0; do
  head -c 200000 /dev/urandom > "$work/m$v.bin"
  $cli pack --name m --version $v --variant "big=$work/m$v.bin:min_ram=8G" --variant "small=$work/m$v.bin" -o "$work/pkg$v" >/dev/null
  $cli sign "$work/pkg$v" --keys "$work/keys" >/dev/null
done
cat > "$work/resolve.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"ram_bytes": 8589934592, "os": "android", "cpu_features": ["neon"]}'
wrk.headers["Content-Type"] = "application/json"
LUA
# New installs: a distinct random install id per request (each one is a new rollout_assignments row).
cat > "$work/assign.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) math.randomseed(os.time() * 100 + tid) end
request = function()
  local id = string.format("bench-%d-%08d-%08d", tid, math.random(0, 99999999), math.random(0, 99999999))
  return wrk.format(nil, nil, nil, '{"install_id": "' .. id .. '", "installed_version": "1.0", "device": {"ram_bytes": 8589934592, "os": "android"}}')
end
LUA
# Steady state: 2,000 installs polling again and again (same answer, nothing to write after the first round).
cat > "$work/poll.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local n = 0
request = function()
  n = (n + 1) % 1000
  local id = string.format("poll-%d-%04d", tid, n)
  return wrk.format(nil, nil, nil, '{"install_id": "' .. id .. '", "installed_version": "1.0", "device": {"ram_bytes": 8589934592, "os": "android"}}')
end
LUA

serve() { # name db-arg; sets $port
  port=$(free_port)
  $cli serve --store "$work/store-$1" --keys "$work/keys" --urls "http://127.0.0.1:$port" --admin-token-file "$work/token-$1" $2 > "$work/serve-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  for v in 1.0 2.0; do $cli publish "$work/pkg$v" --server "http://127.0.0.1:$port" --token-file "$work/token-$1" >/dev/null; done
  $cli rollout start m 2.0 --schedule '10%@0h, 100%@24h' --server "http://127.0.0.1:$port" --token-file "$work/token-$1" >/dev/null
}

measure() { # label url lua
  for i in $(seq 1 "$runs"); do
    out=$(wrk -t2 -c64 -d"${secs}s" --latency -s "$3" "$2")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    echo "$1 run$i requests/s=$rps p50=$p50 p99=$p99 non2xx=${errs:-0}"
  done
}

echo "== $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg): wrk -t2 -c64 -d${secs}s, $runs runs each"
serve sqlite ""
measure "sqlite resolve" "http://127.0.0.1:$port/v1/resolve/m" "$work/resolve.lua"
measure "sqlite assign new-installs" "http://127.0.0.1:$port/v1/assign/m" "$work/assign.lua"
measure "sqlite assign repeated-polls" "http://127.0.0.1:$port/v1/assign/m" "$work/poll.lua"
$cli rollout status m --server "http://127.0.0.1:$port" --token-file "$work/token-sqlite" | grep devices || true

if start_postgres; then
  serve postgres "--db postgres:Host=127.0.0.1;Port=$pgport;Username=ondevice;Database=postgres"
  measure "postgres resolve" "http://127.0.0.1:$port/v1/resolve/m" "$work/resolve.lua"
  measure "postgres assign new-installs" "http://127.0.0.1:$port/v1/assign/m" "$work/assign.lua"
  measure "postgres assign repeated-polls" "http://127.0.0.1:$port/v1/assign/m" "$work/poll.lua"
  $cli rollout status m --server "http://127.0.0.1:$port" --token-file "$work/token-postgres" | grep devices || true
else
  echo "postgres: skipped (no /usr/lib/postgresql/*/bin)"
fi
