#!/usr/bin/env bash
# Telemetry bench: ingest throughput into the aggregates (store level and over HTTP through `ondevice serve`) on
# SQLite and PostgreSQL, and the cost of a guard evaluation over a day of per-minute aggregates.
# Needs postgresql (Debian package) for the PostgreSQL half. Usage: bench/OnDevice.Bench.Telemetry/run.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
dotnet build src/OnDevice.Cli -c Release -nologo -v quiet >/dev/null
dotnet build bench/OnDevice.Bench.Telemetry -c Release -nologo -v quiet >/dev/null
cli="dotnet src/OnDevice.Cli/bin/Release/net10.0/ondevice.dll"
bench="dotnet bench/OnDevice.Bench.Telemetry/bin/Release/net10.0/OnDevice.Bench.Telemetry.dll"
. bench/lib/servers.sh
bench_workdir telemetry
serve() { # name db-arg; sets $port
  port=$(free_port)
  $cli serve --store "$work/store-$1" --keys "$work/keys" --urls "http://127.0.0.1:$port" --telemetry-rate 100000 $2 > "$work/serve-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
}
$cli keys init "$work/keys" >/dev/null
echo "== $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $runs runs each, median (client and server share the cores)"
$bench store "sqlite:$work/store.db" --batches 2000 --writers 8 --runs "$runs"
serve sqlite ""
$bench http "http://127.0.0.1:$port" --batches 2000 --clients 16 --runs "$runs"
$bench guards "sqlite:$work/guards.db" --runs "$runs"

if start_postgres; then
  pg() { echo "postgres:Host=127.0.0.1;Port=$pgport;Username=ondevice;Database=$1"; }
  for db in store http guards; do runuser -u postgres -- "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U ondevice -d postgres -qc "CREATE DATABASE $db" >/dev/null; done
  $bench store "$(pg store)" --batches 2000 --writers 8 --runs "$runs"
  serve postgres "--db $(pg http)"
  $bench http "http://127.0.0.1:$port" --batches 2000 --clients 16 --runs "$runs"
  $bench guards "$(pg guards)" --runs "$runs"
else
  echo "postgres: skipped (no /usr/lib/postgresql/*/bin)"
fi
