#!/usr/bin/env bash
# The restore drill: scripts/restore.sh FILE [TARGET_DB]   (make restore FILE=… [DB=…])
#                    scripts/restore.sh --verify-only FILE TARGET_DB
#
# Restores a dump of scripts/backup.sh into a NEW database (default tsunagu_restore_<UTC time>;
# an existing database is never restored over), made by the schema owner from template1 (where
# the superuser installed PostGIS), and proves the copy is whole:
#  1. before anything, the dump's size and sha256 must match its manifest (FILE's .manifest.json);
#  2. pg_restore --exit-on-error --single-transaction: any error stops it and the new database is
#     dropped (extension entries the new database already has are left out rather than failed);
#  3. every table's row count, and the owners, grants, row-level security, policies, functions,
#     triggers, indexes, constraints and migrations, must equal the manifest's;
#  4. manage.py verify_audit, as the application's role, must find every audit chain intact, and
#     each chain's head (last position and hash) must be the manifest's: a chain rewritten after
#     the backup, even consistently, does not end where the manifest says it did.
# A restored database that fails 3 or 4 is kept for inspection. --verify-only repeats 1, 3 and 4
# on a database restored earlier.
#
#   DATABASE_OWNER_URL  the server, as the schema owner (default: `scripts/pg.sh url owner`); the
#                       restore goes to another database on that server
#   DATABASE_URL        the application's role (default: `scripts/pg.sh url app`), for verify_audit
#                       and for the DATABASE_URL printed at the end
#   JOBS                pg_restore --jobs (default 1: one transaction)
#   PGBIN, PYTHON       as for scripts/backup.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
HELPER="$ROOT/scripts/backup_manifest.py"
export TSUNAGU_BACKUP_PROG=restore

die() { echo "restore: $*" >&2; exit 1; }
usage() { echo "usage: $0 FILE [TARGET_DB] | $0 --verify-only FILE TARGET_DB" >&2; exit 2; }

verify_only=""
if [ "${1:-}" = "--verify-only" ]; then verify_only=1; shift; fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
FILE=$1
TARGET=${2:-}
if [ -n "$verify_only" ] && [ -z "$TARGET" ]; then usage; fi
[ -n "$TARGET" ] || TARGET="tsunagu_restore_$(date -u +%Y%m%dt%H%M%Sz)"
[[ $TARGET =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "$TARGET: a target database name is lower-case letters, digits and _ (63 at most)"

[ -f "$FILE" ] || die "no such dump file: $FILE"
case "$FILE" in
  *.dump) MANIFEST=${MANIFEST:-${FILE%.dump}.manifest.json} ;;
  *) MANIFEST=${MANIFEST:-$FILE.manifest.json} ;;
esac
[ -x "$PY" ] || die "no Python at $PY (run 'make venv', or set PYTHON)"

DATABASE_OWNER_URL=${DATABASE_OWNER_URL:-$("$ROOT/scripts/pg.sh" url owner)}
DATABASE_URL=${DATABASE_URL:-$("$ROOT/scripts/pg.sh" url app)}
export DATABASE_OWNER_URL DATABASE_URL

unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE PGOPTIONS
pgenv=$("$PY" "$HELPER" pgenv DATABASE_OWNER_URL) || exit 1
pg_names=()
while IFS= read -r assignment; do export "${assignment?}"; pg_names+=("${assignment%%=*}"); done <<<"$pgenv"

# 1. The dump is the one the manifest describes.
"$PY" "$HELPER" check-file "$MANIFEST" "$FILE"

# 2. A new database, and pg_restore into it.
if [ -z "$verify_only" ]; then
  pgbin=$("$PY" "$HELPER" pgbin) || exit 1
  "$PY" "$HELPER" create-db "$TARGET"
  if ! "$PY" "$HELPER" restore --pg-restore "$pgbin/pg_restore" --jobs "${JOBS:-1}" "$FILE" "$TARGET"; then
    "$PY" "$HELPER" drop-db "$TARGET" >/dev/null || echo "restore: could not drop $TARGET" >&2
    die "FAILED: pg_restore did not complete; the incomplete database $TARGET was dropped"
  fi
fi

# 3 and 4. verify_audit as the application (its grants and row-level security, in the restored
# database), then everything the manifest holds.
target_owner_url=$("$PY" "$HELPER" url DATABASE_OWNER_URL --database "$TARGET")
target_app_url=$("$PY" "$HELPER" url DATABASE_URL --database "$TARGET")
audit=unavailable
if [ -f "$ROOT/audit/management/commands/verify_audit.py" ]; then
  echo "restore: manage.py verify_audit on $TARGET (as the application's role)"
  # Django connects with the two URLs alone, not with the owner's libpq environment.
  if (unset "${pg_names[@]}"; cd "$ROOT" && DATABASE_URL=$target_app_url DATABASE_OWNER_URL=$target_owner_url \
        "$PY" manage.py verify_audit 2>&1 | sed 's/^/restore:   /'); then
    audit=intact
  else
    audit=broken
  fi
fi
if ! "$PY" "$HELPER" compare "$MANIFEST" "$TARGET" --audit "$audit"; then
  echo "restore: $TARGET is kept for inspection; drop it with:" >&2
  echo "restore:   dropdb --host=${PGHOST:-} --port=${PGPORT:-5432} --username=${PGUSER:-} --force $TARGET" >&2
  exit 1
fi

echo "restore: to run the application on it:"
echo "  DATABASE_URL=$("$PY" "$HELPER" url DATABASE_URL --database "$TARGET" --mask)"
echo "  DATABASE_OWNER_URL=$("$PY" "$HELPER" url DATABASE_OWNER_URL --database "$TARGET" --mask)"
