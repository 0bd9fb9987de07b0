#!/usr/bin/env bash
# First start of the PostGIS container (docker-entrypoint-initdb.d): the two roles of README
# "Database roles". The image's POSTGRES_USER is the cluster's superuser; it only makes the roles
# and hands the database to the owner. The application's role owns nothing and gets its
# privileges from the owner at every migrate (rls/schema.py).
set -euo pipefail
: "${TSUNAGU_OWNER_PASSWORD:?set TSUNAGU_OWNER_PASSWORD}" "${TSUNAGU_APP_PASSWORD:?set TSUNAGU_APP_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v owner_pw="$TSUNAGU_OWNER_PASSWORD" -v app_pw="$TSUNAGU_APP_PASSWORD" <<'SQL'
CREATE ROLE tsunagu_owner LOGIN CREATEDB NOSUPERUSER NOCREATEROLE NOBYPASSRLS PASSWORD :'owner_pw';
CREATE ROLE tsunagu_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT PASSWORD :'app_pw';
GRANT tsunagu_app TO tsunagu_owner;
SELECT format('ALTER DATABASE %I OWNER TO tsunagu_owner', current_database()) \gexec
CREATE EXTENSION IF NOT EXISTS postgis;
-- && may run before the row-level security filter, so the spatial index serves it (README).
ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF;
\connect template1
CREATE EXTENSION IF NOT EXISTS postgis;
ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF;
SQL
