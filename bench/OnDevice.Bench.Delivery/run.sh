#!/usr/bin/env bash
# Delivery load bench: wrk against the update-check endpoint (GET /v1/metadata/timestamp.json) and the resolve
# endpoint on loopback, with SQLite and with PostgreSQL; then client verification throughput of a 100 MB target
# and a full client update from the SQLite server. Needs wrk and postgresql (Debian packages).
# Usage: bench/OnDevice.Bench.Delivery/run.sh [seconds-per-run] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
runs=${2:-3}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
dotnet build src/OnDevice.Cli -c Release -nologo -v quiet >/dev/null
dotnet build bench/OnDevice.Bench.Delivery -c Release -nologo -v quiet >/dev/null
cli="dotnet src/OnDevice.Cli/bin/Release/net10.0/ondevice.dll"
. bench/lib/servers.sh
bench_workdir delivery

$cli keys init "$work/keys" >/dev/null
head -c $((100*1024*1024)) /dev/urandom > "$work/model100.bin"
$cli pack --name big --version 1.0 --variant "a=$work/model100.bin:precision=int8" -o "$work/pkg" >/dev/null
$cli sign "$work/pkg" --keys "$work/keys" >/dev/null
cat > "$work/resolve.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"ram_bytes": 8589934592, "os": "android", "cpu_features": ["neon"]}'
wrk.headers["Content-Type"] = "application/json"
LUA

serve() { # name db-arg [extra]; sets $port (not in a subshell, so the pid is remembered for cleanup)
  port=$(free_port)
  $cli serve --store "$work/store-$1" --keys "$work/keys" --urls "http://127.0.0.1:$port" --admin-token-file "$work/token-$1" $2 ${3:-} > "$work/serve-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  # A second server on an existing database finds the release already there (409); its blobs are uploaded first.
  $cli publish "$work/pkg" --server "http://127.0.0.1:$port" --token-file "$work/token-$1" >/dev/null 2>&1 || echo "($1: release already in the database)"
}

measure() { # label url [lua]
  for i in $(seq 1 "$runs"); do
    out=$(wrk -t2 -c64 -d"${secs}s" --latency ${3:+-s "$3"} "$2")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    echo "$1 run$i requests/s=$rps p50=$p50 p99=$p99 non2xx=${errs:-0}"
  done
}

echo "== $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg): wrk -t2 -c64 -d${secs}s, $runs runs each (client and server share the cores)"
# Peer in the same run: a bare Kestrel minimal API returning the same timestamp bytes from memory (the ceiling).
peer_port=$(free_port)
curl_ts() { curl -sf "http://127.0.0.1:$1/v1/metadata/timestamp.json"; }
serve sqlite ""
curl_ts "$port" > "$work/timestamp.json"
dotnet bench/OnDevice.Bench.Delivery/bin/Release/net10.0/OnDevice.Bench.Delivery.dll --peer "http://127.0.0.1:$peer_port" "$work/timestamp.json" > "$work/peer.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$peer_port/ts" >/dev/null && break; sleep 0.2; done
measure "peer bare-kestrel same-bytes" "http://127.0.0.1:$peer_port/ts"
measure "sqlite update-check" "http://127.0.0.1:$port/v1/metadata/timestamp.json"
measure "sqlite resolve" "http://127.0.0.1:$port/v1/resolve/big" "$work/resolve.lua"
sqlite_port=$port
# The same check with the in-memory timestamp cache off: every request reads the database.
serve sqlite-nocache "--db sqlite:$work/store-sqlite/delivery.db" "--timestamp-cache 0"
measure "sqlite update-check uncached" "http://127.0.0.1:$port/v1/metadata/timestamp.json"

if start_postgres; then
  serve postgres "--db postgres:Host=127.0.0.1;Port=$pgport;Username=ondevice;Database=postgres"
  measure "postgres update-check" "http://127.0.0.1:$port/v1/metadata/timestamp.json"
  measure "postgres resolve" "http://127.0.0.1:$port/v1/resolve/big" "$work/resolve.lua"
  serve postgres-nocache "--db postgres:Host=127.0.0.1;Port=$pgport;Username=ondevice;Database=postgres" "--timestamp-cache 0"
  measure "postgres update-check uncached" "http://127.0.0.1:$port/v1/metadata/timestamp.json"
else
  echo "postgres: skipped (no /usr/lib/postgresql/*/bin)"
fi

echo "== client verification of a 100 MB target, and a full update from the SQLite server"
dotnet bench/OnDevice.Bench.Delivery/bin/Release/net10.0/OnDevice.Bench.Delivery.dll "$work/model100.bin" --runs 5 \
  --server "http://127.0.0.1:$sqlite_port" --root "$work/keys/root.json" --model big
