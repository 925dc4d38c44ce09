# Shared by the server benches (delivery, rollout, telemetry): a work folder removed on exit together with the
# processes in $pids and the PostgreSQL cluster started by start_postgres. Source it after `cd` to the repo root:
#   . bench/lib/servers.sh; bench_workdir NAME
# shellcheck shell=bash

bench_workdir() { # NAME: sets $work, registers the cleanup
  work=$(mktemp -d "/tmp/ondevice-$1-bench.XXXXXX")
  pids=()
  pgdata=""
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$pgdata" ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start_postgres() { # starts a throw-away cluster in $work/pg; sets $pgbin, $pgdata, $pgport; fails when PostgreSQL is not installed
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$pgbin" ] || return 1
  mkdir -p "$work/pg" && chown postgres "$work/pg" && chmod 755 "$work"
  pgdata="$work/pg/data"
  pgport=$(free_port)
  runuser -u postgres -- "$pgbin/initdb" -D "$pgdata" -A trust -U ondevice --no-sync --no-locale -E UTF8 >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -l "$work/pg/log" -w -o "-p $pgport -h 127.0.0.1 -k $work/pg -c max_connections=300" start >/dev/null
}
