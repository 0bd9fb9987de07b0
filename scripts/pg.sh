#!/usr/bin/env bash
# The project-local PostgreSQL + PostGIS cluster: scripts/pg.sh start|stop|status|url [app|owner]
#
# Two login roles, as in production: tsunagu_owner owns the schema (migrations, createcachetable,
# backups; it may create databases, for the test suite's) and tsunagu_app is what the web server
# and the job cluster connect as (no superuser, owns nothing, no BYPASSRLS; the owner grants it
# what it may do). The cluster's superuser `postgres` only creates the roles and PostGIS (in
# template1 too, so every database the owner creates has it).
#
# Data lives in .local/pg (ignored by git). PostgreSQL refuses to run as root, so when we are root
# the server binaries run as the unprivileged `postgres` user, which owns the data folder. If that
# user cannot reach the checkout (e.g. a clone under /root), the data folder is placed under
# /var/lib/postgresql and linked from .local/pg.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${TSUNAGU_PG_PORT:-54329}
DB=${TSUNAGU_PG_DB:-tsunagu}
OWNER=tsunagu_owner
APP=tsunagu_app
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
  local psql=(env PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
  "${psql[@]}" -d postgres >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$OWNER') THEN
    CREATE ROLE $OWNER LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP') THEN
    CREATE ROLE $APP LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
  END IF;
END \$\$;
-- The owner may act as the application (SET ROLE), never the other way round.
GRANT $APP TO $OWNER;
-- Bulk loads of the benchmarks and the deadlock test's lock timing (owner sessions only; the
-- owner may switch off triggers on its own tables anyway).
GRANT SET ON PARAMETER session_replication_role, deadlock_timeout TO $OWNER;
-- Data on SSD or in memory: index scans are not 4x a sequential page. At the default the planner
-- preferred a municipality's btree to the spatial index under row-level security (README).
ALTER SYSTEM SET random_page_cost = 1.1;
SELECT pg_reload_conf();
SQL
  for db in template1 "$DB"; do
    if [ "$db" = "$DB" ] && ! "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
      continue  # made below, from template1
    fi
    # PostGIS's bounding-box test (&&) is safe to run before row-level security filters (it
    # compares boxes and raises no error that could reveal a row); marked LEAKPROOF, a spatial
    # index serves it under the policies. Needs a superuser, and again after ALTER EXTENSION UPDATE.
    "${psql[@]}" -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS postgis;
ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF;
SQL
  done
  # A database from before the role split belongs to postgres, and so do its tables: made again
  # (it holds demo data only; `make run` reloads it). Test databases likewise.
  local stale
  stale=$("${psql[@]}" -d postgres -tAc "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
                                          WHERE (datname IN ('$DB', 'test_$DB') OR datname LIKE 'test\\_$DB\\_gw%') AND r.rolname <> '$OWNER'")
  for name in $stale; do
    echo "pg: database $name predates the owner/app roles; dropping it to make it again"
    "$PGBIN/dropdb" -h 127.0.0.1 -p "$PORT" -U postgres --force "$name"
  done
  if ! "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
    "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres -O "$OWNER" "$DB"
  fi
}

stop() {
  if running; then as_owner "$PGBIN/pg_ctl" -D "$DATA/" -m fast -w stop >/dev/null && echo "pg: stopped"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "pg: running on 127.0.0.1:$PORT"; else echo "pg: not running"; exit 3; fi ;;
  url)
    case "${2:-app}" in
      app) echo "postgis://$APP@127.0.0.1:$PORT/$DB" ;;
      owner) echo "postgis://$OWNER@127.0.0.1:$PORT/$DB" ;;
      *) echo "usage: $0 url [app|owner]" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
