#!/usr/bin/env bash
# A backup of the database: scripts/backup.sh  (make backup)
#
# Writes BACKUP_DIR/<database>-<UTC time>.dump, a pg_dump in custom format (-Fc) taken as the
# schema owner (row-level security does not apply to the owner, so every row of every
# municipality is in it), and beside it <database>-<UTC time>.manifest.json: when, from which
# server and PostGIS, the migrations applied, the dump's size and sha256, the row count of every
# table and the head of every audit hash chain, all read in the snapshot that pg_dump dumps, plus
# a fingerprint of owners, grants, policies, functions and triggers for the restore to compare.
# The manifest is written (atomically) only once the dump has succeeded.
#
#   DATABASE_OWNER_URL  the database, as its owner (production); default: `scripts/pg.sh url owner`
#   BACKUP_DIR          where the files go (default .local/backups, git-ignored; mode 700: the dumps
#                       hold personal data)
#   PGBIN               folder of pg_dump/pg_restore (default: those of the server's major version)
#   LOCK_WAIT_TIMEOUT   how long pg_dump waits for a table lock (a running migration) (default 120s)
#   PYTHON              the interpreter with psycopg (default .venv/bin/python)
#
# Restore with scripts/restore.sh (make restore FILE=…). Uploaded files (MEDIA_ROOT: visit photos)
# are not in the database: back them up with the dumps.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
HELPER="$ROOT/scripts/backup_manifest.py"
BACKUP_DIR=${BACKUP_DIR:-$ROOT/.local/backups}
export TSUNAGU_BACKUP_PROG=backup

die() { echo "backup: $*" >&2; exit 1; }

[ -x "$PY" ] || die "no Python at $PY (run 'make venv', or set PYTHON)"

DATABASE_OWNER_URL=${DATABASE_OWNER_URL:-$("$ROOT/scripts/pg.sh" url owner)}
export DATABASE_OWNER_URL

# libpq's environment from the URL (the password stays out of every command line).
unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE PGOPTIONS
pgenv=$("$PY" "$HELPER" pgenv DATABASE_OWNER_URL) || exit 1
while IFS= read -r assignment; do export "${assignment?}"; done <<<"$pgenv"

echo "backup: $("$PY" "$HELPER" url DATABASE_OWNER_URL --mask) -> $BACKUP_DIR"
pgbin=$("$PY" "$HELPER" pgbin) || exit 1

"$PY" "$HELPER" dump --pg-dump "$pgbin/pg_dump" --dir "$BACKUP_DIR" \
  --lock-wait-timeout "${LOCK_WAIT_TIMEOUT:-120s}" || die "FAILED: no backup was written"
