#!/usr/bin/env bash
# The project-local PostgreSQL + PostGIS cluster: scripts/pg.sh start|stop|status|url
#
# Data lives in .local/pg (ignored by git). PostgreSQL refuses to run as root, so when we are root
# the server binaries run as the unprivileged `postgres` user, which owns the data folder. If that
# user cannot reach the checkout (e.g. a clone under /root), the data folder is placed under
# /var/lib/postgresql and linked from .local/pg.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${TSUNAGU_PG_PORT:-54329}
DB=${TSUNAGU_PG_DB:-tsunagu}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
DATA="$ROOT/.local/pg"
LOG="$ROOT/.local/pg.log"

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

init_cluster() {
  mkdir -p "$ROOT/.local"
  if [ "$(id -u)" -eq 0 ]; then
    if ! runuser -u postgres -- test -x "$ROOT/.local"; then
      local alt="/var/lib/postgresql/tsunagu-$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
      mkdir -p "$alt"; chown postgres:postgres "$alt"
      ln -sfn "$alt" "$DATA"
    else
      mkdir -p "$DATA"; chown postgres:postgres "$DATA"
    fi
    touch "$LOG"; chown postgres:postgres "$LOG"
  else
    mkdir -p "$DATA"
  fi
  echo "pg: initialising a PostgreSQL cluster in $DATA"
  as_owner "$PGBIN/initdb" -D "$DATA/" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
}

running() { [ -f "$DATA/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA/" status >/dev/null 2>&1; }

start() {
  [ -n "$PGBIN" ] || { echo "pg: PostgreSQL server binaries not found (run scripts/system-deps.sh)" >&2; exit 1; }
  [ -f "$DATA/PG_VERSION" ] || init_cluster
  if ! running; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA/" -l "$LOG" -w -t 60 \
      -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' ${TSUNAGU_PG_OPTS:-}" start >/dev/null
  fi
  if ! "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
    "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
  fi
  "$PGBIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -d "$DB" -c 'CREATE EXTENSION IF NOT EXISTS postgis;' >/dev/null
}

stop() {
  if running; then as_owner "$PGBIN/pg_ctl" -D "$DATA/" -m fast -w stop >/dev/null && echo "pg: stopped"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "pg: running on 127.0.0.1:$PORT"; else echo "pg: not running"; exit 3; fi ;;
  url) echo "postgis://postgres@127.0.0.1:$PORT/$DB" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
