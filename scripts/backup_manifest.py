"""The database side of `scripts/backup.sh` and `scripts/restore.sh`: the dump and its manifest, the
restore, and the comparison of a restored database with the manifest.

Standard library and psycopg only (no Django settings). It reaches PostgreSQL through libpq's
environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE …), which the shell scripts
set from a database URL with the ``pgenv`` subcommand; URLs are read from environment variables,
never from the command line, so a password never shows in the process list.

  pgenv VAR                       libpq's environment for the URL in $VAR (KEY=VALUE lines)
  url VAR [--database N] [--mask] the URL in $VAR for another database, or with its password masked
  pgbin                           the folder of pg_dump/pg_restore of the server's major version
  dump --pg-dump BIN --dir DIR    one snapshot: the manifest's facts, then pg_dump -Fc of it
  check-file MANIFEST DUMP        the dump's size and sha256 against its manifest
  create-db NAME / drop-db NAME   a fresh database for a restore (refuses an existing one)
  restore --pg-restore BIN DUMP NAME
  compare MANIFEST NAME --audit intact|broken|unavailable

Why a snapshot: the manifest's row counts and audit chain heads are read in the very snapshot
pg_dump dumps (pg_export_snapshot + pg_dump --snapshot), so they describe the dump exactly even
while the application keeps writing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

# psycopg is imported where a database is used: `pgenv` and `url` start faster without it.

MANIFEST_FORMAT = 1
# How errors are signed: "backup" or "restore", from the script that runs this one.
PROG = os.environ.get("TSUNAGU_BACKUP_PROG", "backup_manifest")
DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
URL_SCHEMES = {"postgres", "postgresql", "postgis", "pgsql"}
# Query parameters of a database URL that libpq reads from its environment.
URL_PARAMETERS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
PROGRESS_EVERY_SECONDS = 3.0

# The project's relations and functions: those in the user's schemas that are not members of an
# extension (PostGIS's spatial_ref_sys and views come with the extension, not with the dump).
USER_RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind, pg_catalog.pg_get_userbyid(c.relowner),
       c.relrowsecurity, c.relforcerowsecurity, c.relacl::text[]
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                    WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid
                      AND e.deptype = 'e')
 ORDER BY n.nspname, c.relname
"""


def label(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


class Failure(Exception):
    """A refusal or failure, told to the operator as it is (exit status 1)."""


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# URLs and connections


def read_url(variable: str) -> SplitResult:
    url = os.environ.get(variable, "")
    if not url:
        raise Failure(f"${variable} is empty")
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        raise Failure(f"${variable} is not a PostgreSQL URL (scheme {parts.scheme!r})")
    return parts


def pgenv(variable: str) -> list[str]:
    parts = read_url(variable)
    env: dict[str, str] = {}
    # The host as written (.hostname would lower-case a %2F-encoded socket folder).
    host = parts.netloc.rpartition("@")[2]
    host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if host:
        env["PGHOST"] = unquote(host)
    if parts.port:
        env["PGPORT"] = str(parts.port)
    if parts.username:
        env["PGUSER"] = unquote(parts.username)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise Failure(f"${variable} names no database")
    env["PGDATABASE"] = database
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in URL_PARAMETERS:
            raise Failure(f"${variable}: the URL parameter {key!r} is not one libpq understands")
        env[URL_PARAMETERS[key]] = value
    lines = []
    for key, value in env.items():
        if "\n" in value or "\0" in value:
            raise Failure(f"${variable}: {key} holds a line break")
        lines.append(f"{key}={value}")
    return lines


def url_for(variable: str, database: str | None, mask: bool) -> str:
    parts = read_url(variable)
    netloc = parts.netloc
    if mask and parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:****@{hostport}"
    path = parts.path if database is None else "/" + quote(database)
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def connect(database: str | None = None, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A connection from libpq's environment (to `database` instead of PGDATABASE if given),
    with a fixed search path (names below are schema-qualified, and object definitions are
    rendered the same way on both sides of a comparison) and no row-level security: a query
    that row-level security would filter fails instead of undercounting."""
    import psycopg
    kwargs: dict[str, Any] = {"autocommit": autocommit, "application_name": "tsunagu-backup"}
    if database is not None:
        kwargs["dbname"] = database
    try:
        conn = psycopg.connect(**kwargs)
    except psycopg.OperationalError as error:
        where = database or os.environ.get("PGDATABASE", "?")
        raise Failure(f"cannot connect to database {where}: {str(error).strip()}") from None
    conn.execute(
        "SELECT pg_catalog.set_config('search_path', 'pg_catalog', false),"
        " pg_catalog.set_config('row_security', 'off', false),"
        " pg_catalog.set_config('statement_timeout', '0', false),"
        " pg_catalog.set_config('idle_in_transaction_session_timeout', '0', false)"
    )
    if not autocommit:
        conn.commit()
    return conn


def valid_name(name: str) -> str:
    if not DB_NAME.match(name):
        raise Failure(f"{name!r} is not a database name this script makes (lower-case letters, digits, _; 63 at most)")
    return name


# ---------------------------------------------------------------------------------------------
# The facts a manifest holds, read in one transaction


def rows(conn: psycopg.Connection[Any], query: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    return conn.execute(query, list(params) or None).fetchall()


def table_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return rows(conn, "SELECT pg_catalog.to_regclass(%s) IS NOT NULL", [name])[0][0]


def user_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(schema, name) of the project's ordinary tables (the leaves, for a partitioned one)."""
    return [(schema, name) for _oid, schema, name, kind, *_ in rows(conn, USER_RELATIONS) if kind == "r"]


def row_counts(conn: psycopg.Connection[Any], *, progress: bool = False) -> dict[str, int]:
    from psycopg import sql
    tables = user_tables(conn)
    started = time.monotonic()
    counts: dict[str, int] = {}
    for schema, name in tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
        counts[label(schema, name)] = conn.execute(query).fetchone()[0]  # type: ignore[index]
    if progress:
        say(f"backup: counted the rows of {len(tables)} tables ({sum(counts.values()):,} rows, "
            f"{time.monotonic() - started:.1f} s)")
    return counts


def migrations(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    if not table_exists(conn, "public.django_migrations"):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for app, last, applied in rows(
        conn, "SELECT app, max(name), count(*) FROM public.django_migrations GROUP BY app ORDER BY app"
    ):
        found[app] = {"last": last, "applied": applied}
    return found


def chain_columns_exist(conn: psycopg.Connection[Any]) -> bool:
    (present,) = rows(
        conn,
        """SELECT count(*) FROM pg_attribute
            WHERE attrelid = pg_catalog.to_regclass('public.audit_auditevent')
              AND attname IN ('chain_seq', 'prev_hash', 'hash') AND NOT attisdropped""",
    )[0]
    return present == 3


def chain_heads(conn: psycopg.Connection[Any]) -> list[dict[str, Any]] | None:
    """The last event of every audit chain that has one: one chain per municipality, and chain 0
    for the events without a municipality (None when the audit log has no chain columns)."""
    if not chain_columns_exist(conn):
        return None
    towns: list[tuple[int | None, str | None]] = [(None, None)]
    if table_exists(conn, "public.neighborhoods_municipality"):
        towns += rows(conn, "SELECT id, code FROM public.neighborhoods_municipality ORDER BY id")
    heads = []
    for municipality_id, code in towns:
        # COALESCE(municipality_id, 0), chain_seq: the unique index audit_chain_position, read backwards.
        head = rows(
            conn,
            """SELECT chain_seq, hash FROM public.audit_auditevent
                WHERE COALESCE(municipality_id, 0) = %s ORDER BY chain_seq DESC LIMIT 1""",
            [municipality_id or 0],
        )
        if head:
            heads.append({
                "municipality_id": municipality_id, "code": code,
                "last_chain_seq": head[0][0], "last_hash": head[0][1],
            })
    return heads


SCHEMA_CATEGORIES = [
    "schemas", "tables", "grants", "policies", "functions", "triggers", "indexes", "constraints",
    "default_privileges",
]
USER_SCHEMAS = """
SELECT n.nspname, pg_catalog.pg_get_userbyid(n.nspowner), n.nspacl::text[] FROM pg_catalog.pg_namespace n
 WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
"""
POLICIES = """
SELECT p.polrelid, p.polname, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END, p.polcmd::text,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END
               FROM pg_catalog.unnest(p.polroles) r ORDER BY 1),
       pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
  FROM pg_catalog.pg_policy p
"""
FUNCTIONS = """
SELECT n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
       pg_catalog.pg_get_userbyid(p.proowner), p.prosecdef, p.proconfig, p.proacl::text[],
       CASE WHEN p.prokind IN ('f', 'p') THEN pg_catalog.md5(pg_catalog.pg_get_functiondef(p.oid)) END
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                    WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid
                      AND e.deptype = 'e')
"""
TRIGGERS = """
SELECT t.tgrelid, t.tgname, t.tgenabled::text, pg_catalog.md5(pg_catalog.pg_get_triggerdef(t.oid))
  FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal
"""
INDEXES = """
SELECT i.indrelid, ic.relname, am.amname, i.indisunique, i.indisprimary, i.indkey::int2[], i.indpred IS NOT NULL
  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
"""
CONSTRAINTS = """
SELECT k.conrelid, k.conname, k.contype::text, k.conkey, k.confrelid, k.confkey, k.confdeltype::text,
       k.condeferrable, k.condeferred, k.convalidated
  FROM pg_catalog.pg_constraint k WHERE k.conrelid <> 0
"""
COLUMNS = "SELECT a.attrelid, a.attnum, a.attname FROM pg_catalog.pg_attribute a WHERE a.attnum > 0"
DEFAULT_PRIVILEGES = """
SELECT pg_catalog.pg_get_userbyid(d.defaclrole), COALESCE(n.nspname, '*'), d.defaclobjtype::text, d.defaclacl::text[]
  FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
"""
CONSTRAINT_TYPES = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check", "x": "exclusion", "t": "trigger"}
DEFAULT_ACL_TYPES = {"r": "tables", "S": "sequences", "f": "functions", "T": "types", "n": "schemas"}


def acl(items: list[str] | None) -> str:
    """An ACL in a fixed order ("grantee=privileges/grantor" items; PostgreSQL keeps them in the
    order they were granted, which a restore need not repeat). None: the built-in defaults."""
    return "default" if items is None else "[" + ", ".join(sorted(items)) + "]"


def schema_fingerprint(conn: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    """What a restore must reproduce besides the rows, object by object: owners, row-level
    security and its policies, grants (tables, sequences, views, functions, schemas, default
    privileges), functions (SECURITY DEFINER, settings, definition), triggers (definition,
    enabled), and indexes and constraints by structure: PostgreSQL may print an equivalent index
    predicate differently once it is read back (a cast over an IN list moves into its items)."""
    found: dict[str, dict[str, str]] = {category: {} for category in SCHEMA_CATEGORIES}
    for schema, owner, items in rows(conn, USER_SCHEMAS):
        found["schemas"][schema] = f"owner={owner} acl={acl(items)}"
    relations: dict[int, str] = {}
    for oid, schema, name, kind, owner, rls, forced, items in rows(conn, USER_RELATIONS):
        relations[oid] = f"{schema}.{name}"
        if kind in ("r", "p"):
            found["tables"][relations[oid]] = (
                f"owner={owner} row_security={'on' if rls else 'off'} forced={'on' if forced else 'off'}"
            )
        found["grants"][relations[oid]] = acl(items)
    columns = {(relid, number): name for relid, number, name in rows(conn, COLUMNS) if relid in relations}

    def names(relid: int, numbers: list[int] | None) -> str:
        return ", ".join(columns.get((relid, n), "expr") for n in numbers or [])

    for relid, name, permissive, command, roles, using, check in rows(conn, POLICIES):
        if relid in relations:
            found["policies"][f"{relations[relid]} {name}"] = (
                f"{permissive} {command} to {','.join(roles)} using ({using}) with check ({check})"
            )
    for signature, owner, definer, config, items, definition in rows(conn, FUNCTIONS):
        found["functions"][signature] = (
            f"owner={owner}{' security_definer' if definer else ''} config={config or []} "
            f"acl={acl(items)} definition={definition or '-'}"
        )
    for relid, name, enabled, definition in rows(conn, TRIGGERS):
        if relid in relations:
            found["triggers"][f"{relations[relid]} {name}"] = f"enabled={enabled} definition={definition}"
    for relid, name, method, unique, primary, keys, partial in rows(conn, INDEXES):
        if relid in relations:
            found["indexes"][f"{relations[relid]} {name}"] = (
                f"{method}{' unique' if unique else ''}{' primary key' if primary else ''} ({names(relid, keys)})"
                f"{' partial' if partial else ''}"
            )
    for relid, name, kind, keys, frelid, fkeys, on_delete, deferrable, deferred, valid in rows(conn, CONSTRAINTS):
        if relid in relations:
            text = f"{CONSTRAINT_TYPES.get(kind, kind)} ({names(relid, keys)})"
            if kind == "f":
                text += f" references {relations.get(frelid, frelid)} ({names(frelid, fkeys)}) on delete {on_delete}"
            text += (" deferrable" if deferrable else "") + (" initially deferred" if deferred else "")
            found["constraints"][f"{relations[relid]} {name}"] = text + ("" if valid else " not valid")
    for role, schema, kind, items in rows(conn, DEFAULT_PRIVILEGES):
        found["default_privileges"][f"{role} in {schema} on {DEFAULT_ACL_TYPES.get(kind, kind)}"] = acl(items)
    return {category: dict(sorted(objects.items())) for category, objects in found.items()}


def server_facts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    (database, user, version, version_num) = rows(
        conn, "SELECT current_database(), current_user, version(), current_setting('server_version_num')::int"
    )[0]
    extensions = {
        name: {"version": version_, "owner": owner, "schema": schema}
        for name, version_, owner, schema in rows(
            conn,
            """SELECT x.extname, x.extversion, pg_catalog.pg_get_userbyid(x.extowner), n.nspname
                 FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace ORDER BY 1""",
        )
    }
    (datacl, settings) = rows(
        conn,
        """SELECT d.datacl::text[],
                  (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0)
             FROM pg_database d WHERE d.datname = current_database()""",
    )[0]
    return {
        "database": database,
        "dumped_as": user,
        "server_version": version,
        "server_version_num": version_num,
        "postgis_version": extensions.get("postgis", {}).get("version"),
        "extensions": extensions,
        "database_acl": sorted(datacl) if datacl else None,
        "database_settings": sorted(settings) if settings else None,
    }


# ---------------------------------------------------------------------------------------------
# Running pg_dump / pg_restore with a few lines of progress


@dataclass
class Progress:
    """Turns the --verbose chatter of pg_dump/pg_restore into a line per phase and a table count
    every few seconds; errors and warnings pass through whole."""

    prefix: str
    data_marker: str
    tables: int
    phases: list[tuple[str, str]]
    seen_phases: set[str] = field(default_factory=set)
    done_tables: int = 0
    last_report: float = field(default_factory=time.monotonic)

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        verbose = re.match(r"^(pg_dump|pg_restore): (.*)$", line)
        if verbose is None or re.match(r"^(error|warning|detail|hint):", verbose.group(2)):
            # An error and what follows it (ERROR:, Command was: …): passed on whole.
            print(f"{self.prefix}: {line}", file=sys.stderr, flush=True)
            return
        text = verbose.group(2)
        if text.startswith(self.data_marker):
            self.done_tables += 1
            now = time.monotonic()
            if now - self.last_report >= PROGRESS_EVERY_SECONDS:
                say(f"{self.prefix}: table data: {self.done_tables}/{self.tables} tables")
                self.last_report = now
        for start, phase in self.phases:
            if text.startswith(start) and phase not in self.seen_phases:
                self.seen_phases.add(phase)
                say(f"{self.prefix}: {phase}")
                self.last_report = time.monotonic()


def run_verbose(command: list[str], progress: Progress) -> None:
    process = subprocess.Popen(  # noqa: S603 (the binaries the shell scripts chose, fixed arguments)
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    assert process.stderr is not None
    for line in process.stderr:
        progress.feed(line)
    status = process.wait()
    if status != 0:
        raise Failure(f"{Path(command[0]).name} failed (exit status {status})")


def tool_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)  # noqa: S603
    return out.stdout.strip()


# ---------------------------------------------------------------------------------------------
# Subcommands


def cmd_pgbin(_args: argparse.Namespace) -> None:
    """The folder of pg_dump/pg_restore of the server's major version: $PGBIN if set (checked),
    else /usr/lib/postgresql/<major>/bin (Debian), else `pg_config --bindir`, else $PATH."""
    with connect() as conn:
        major = int(conn.info.server_version) // 10000
    candidates = []
    if os.environ.get("PGBIN"):
        candidates.append(Path(os.environ["PGBIN"]))
    else:
        candidates.append(Path(f"/usr/lib/postgresql/{major}/bin"))
        pg_config = shutil.which("pg_config")
        if pg_config:
            bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)  # noqa: S603
            candidates.append(Path(bindir.stdout.strip()))
        on_path = shutil.which("pg_dump")
        if on_path:
            candidates.append(Path(on_path).parent)
    for folder in candidates:
        dump, restore = folder / "pg_dump", folder / "pg_restore"
        if dump.is_file() and restore.is_file():
            found = re.search(r"\) (\d+)", tool_version(str(dump)))
            if found and int(found.group(1)) == major:
                print(folder)
                return
    looked = ", ".join(str(c) for c in candidates) or "nothing"
    raise Failure(
        f"no pg_dump/pg_restore of PostgreSQL {major} (the server's major version) in {looked}; "
        f"install postgresql-client-{major} or set PGBIN to their folder"
    )


def cmd_dump(args: argparse.Namespace) -> None:
    import psycopg
    os.umask(0o077)  # a dump holds personal data: readable by its owner only
    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_mode & 0o077:
        print(f"backup: warning: {folder} is readable by other users; the dumps hold personal data "
              f"(chmod 700 {folder})", file=sys.stderr)
    pg_dump_version = tool_version(args.pg_dump)

    with connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot, created = rows(conn, "SELECT pg_export_snapshot(), now()")[0]
        created_at: datetime = created.astimezone(UTC)
        stamp = created_at.strftime("%Y%m%dT%H%M%SZ")
        facts = server_facts(conn)
        name = f"{facts['database']}-{stamp}"
        dump_path, manifest_path = folder / f"{name}.dump", folder / f"{name}.manifest.json"
        partial = folder / f".{name}.dump.partial"
        if dump_path.exists() or manifest_path.exists():
            raise Failure(f"{dump_path} already exists (two backups in one second?)")
        say(f"backup: snapshot of {facts['database']} taken at {created_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(PostgreSQL {conn.info.server_version // 10000}, PostGIS {facts['postgis_version'] or '-'})")
        counts = row_counts(conn, progress=True)
        heads = chain_heads(conn)
        applied = migrations(conn)
        schema = schema_fingerprint(conn)

        say(f"backup: pg_dump -Fc of that snapshot into {partial.name}")
        started = time.monotonic()
        command = [
            args.pg_dump, "--format=custom", "--verbose", f"--snapshot={snapshot}",
            f"--lock-wait-timeout={args.lock_wait_timeout}", f"--file={partial}",
        ]
        # pg_dump also dumps the rows added to extensions' configuration tables (spatial_ref_sys).
        (configured,) = rows(conn, "SELECT COALESCE(sum(cardinality(extconfig)), 0) FROM pg_extension")[0]
        progress = Progress(
            prefix="backup", data_marker="dumping contents of table", tables=len(counts) + configured,
            phases=[("reading", "pg_dump: reading the schema"), ("dumping contents", "pg_dump: dumping table data")],
        )
        try:
            run_verbose(command, progress)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        conn.rollback()  # the snapshot may go: pg_dump has its copy

    try:
        digest, size = sha256_of(partial)
        manifest = {
            "format": MANIFEST_FORMAT,
            "created_at": created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            **facts,
            "pg_dump_version": pg_dump_version,
            "dump": {"file": dump_path.name, "format": "custom", "bytes": size, "sha256": digest},
            "migrations": applied,
            "row_counts": counts,
            "audit_chain_heads": heads,
            "schema": schema,
        }
        temporary = folder / f".{name}.manifest.json.tmp"
        with temporary.open("w", encoding="utf-8") as out:
            json.dump(manifest, out, ensure_ascii=False, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, dump_path)
        os.replace(temporary, manifest_path)
        sync_folder(folder)
    except BaseException:
        partial.unlink(missing_ok=True)
        (folder / f".{name}.manifest.json.tmp").unlink(missing_ok=True)
        raise
    chains = "no audit chain columns" if heads is None else plural(len(heads), "audit chain head")
    say(f"backup: {dump_path} ({size / 1e6:.1f} MB, {time.monotonic() - started:.1f} s), sha256 {digest}")
    say(f"backup: {manifest_path}: {len(counts)} tables, {sum(counts.values()):,} rows, {chains}")


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_manifest(path: str) -> dict[str, Any]:
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Failure(f"no manifest {path}: a dump is restored only with the manifest written beside it") from None
    except (OSError, ValueError) as error:
        raise Failure(f"cannot read the manifest {path}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise Failure(f"{path} is not a backup manifest of format {MANIFEST_FORMAT}")
    return manifest


def cmd_check_file(args: argparse.Namespace) -> None:
    manifest = load_manifest(args.manifest)
    dump = Path(args.dump)
    if not dump.is_file():
        raise Failure(f"no dump file {dump}")
    expected = manifest["dump"]
    digest, size = sha256_of(dump)
    if digest != expected["sha256"] or size != expected["bytes"]:
        raise Failure(
            f"refusing to restore {dump}: it does not match its manifest {args.manifest} "
            f"(sha256 {digest}, {size} bytes; the manifest says {expected['sha256']}, {expected['bytes']} bytes). "
            "The file is damaged or is not the dump this manifest describes."
        )
    if dump.name != expected["file"]:
        print(f"restore: note: {dump.name} was written as {expected['file']}", file=sys.stderr)
    say(f"restore: {dump.name} matches its manifest (sha256 {digest[:16]}…, "
        f"taken {manifest['created_at']} from {manifest['database']})")


def cmd_create_db(args: argparse.Namespace) -> None:
    from psycopg import sql
    name = valid_name(args.name)
    with connect(autocommit=True) as conn:
        if rows(conn, "SELECT 1 FROM pg_database WHERE datname = %s", [name]):
            raise Failure(f"database {name} already exists: a restore goes into a new database only")
        # template1: the superuser installed PostGIS there, which the owner could not create.
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template1").format(sql.Identifier(name)))
    say(f"restore: created database {name}")


def cmd_drop_db(args: argparse.Namespace) -> None:
    from psycopg import sql
    name = valid_name(args.name)
    with connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    say(f"restore: dropped database {name}")


# TOC lines of `pg_restore --list`: "<dump id>; <catalog oid> <object oid> <type> <schema> <name> <owner>".
TOC_EXTENSION = re.compile(r"^\d+; 3079 \d+ EXTENSION - (\S+) ")
TOC_EXTENSION_COMMENT = re.compile(r"^\d+; 0 0 COMMENT - EXTENSION (\S+) ")
TOC_TABLE = re.compile(r"^\d+; 1259 \d+ TABLE (\S+) (\S+) ")
TOC_TABLE_DATA = re.compile(r"^\d+; 0 \d+ TABLE DATA (\S+) (\S+) ")
TOC_TRIGGER = re.compile(r"^\d+; (2620 \d+ TRIGGER|0 0 COMMENT \S+ TRIGGER) ")
HEADER_SEARCH_PATH = "SELECT pg_catalog.set_config('search_path', '', false);"


@dataclass
class RestorePlan:
    main: list[str]
    triggers: list[str]
    skipped: list[str]


def plan_restore(pg_restore: str, dump: str, target: psycopg.Connection[Any]) -> RestorePlan:
    """Which entries of the dump to restore, and how:

    - an extension the new database already has (PostGIS, from template1, owned by the superuser)
      is left out with its COMMENT: the owner could neither create it nor comment on it, and it is
      there already; an extension it lacks is created by the restore if the owner may (a trusted
      one such as pg_trgm), and otherwise the restore is refused before it starts;
    - the data of an extension's configuration table (PostGIS's spatial_ref_sys: the rows added
      to it by hand) is left out when it holds no rows, and refused otherwise;
    - triggers (and their comments) are restored in a second pass, see `restore_triggers`.
    """
    toc = subprocess.run([pg_restore, "--list", dump], capture_output=True, text=True, check=False)  # noqa: S603
    if toc.returncode != 0:
        raise Failure(f"pg_restore cannot read {dump}: {toc.stderr.strip()}")
    lines = toc.stdout.splitlines()
    installed = {name for (name,) in rows(target, "SELECT extname FROM pg_extension")}
    is_superuser = rows(target, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0][0]
    tables = {m.groups() for m in map(TOC_TABLE.match, lines) if m}
    plan = RestorePlan(main=[], triggers=[], skipped=[])
    for line in lines:
        extension = TOC_EXTENSION.match(line) or TOC_EXTENSION_COMMENT.match(line)
        data = TOC_TABLE_DATA.match(line)
        if extension and extension.group(1) in installed:
            plan.skipped.append(line)
        elif extension and TOC_EXTENSION.match(line):
            name = extension.group(1)
            available = rows(
                target,
                "SELECT bool_or(trusted) FROM pg_available_extension_versions WHERE name = %s",
                [name],
            )[0][0]
            if available is None:
                raise Failure(f"the dump needs the extension {name}, which this server does not have")
            if not (available or is_superuser):
                raise Failure(
                    f"the dump needs the extension {name}, which the new database (made from template1) "
                    f"lacks and the restoring role may not create: a superuser must run "
                    f"CREATE EXTENSION {name} in template1 first"
                )
            plan.main.append(line)
        elif data and data.groups() not in tables:
            schema, table = data.groups()
            copied = extension_data_rows(pg_restore, dump, line)
            if copied:
                raise Failure(
                    f"the dump holds {copied} rows of {schema}.{table}, an extension's table owned by "
                    "the superuser, added to it by hand: a superuser must restore them"
                )
            plan.skipped.append(line)
        elif TOC_TRIGGER.match(line):
            plan.triggers.append(line)
        else:
            plan.main.append(line)
    return plan


def extension_data_rows(pg_restore: str, dump: str, entry: str) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".list") as listing:
        listing.write(entry + "\n")
        listing.flush()
        script = subprocess.run(  # noqa: S603
            [pg_restore, f"--use-list={listing.name}", "--file=-", dump], capture_output=True, text=True, check=True
        ).stdout
    in_copy, count = False, 0
    for line in script.splitlines():
        if line.startswith("COPY "):
            in_copy = True
        elif line == "\\.":
            in_copy = False
        elif in_copy:
            count += 1
    return count


def restore_triggers(pg_restore: str, dump: str, entries: list[str], target: psycopg.Connection[Any]) -> None:
    """The second pass. pg_restore runs with an empty search_path, and a trigger's WHEN clause
    that compares PostGIS columns with IS DISTINCT FROM (pghistory's and pgtrigger's conditions on
    a household's location) names the geometry `=` operator without a schema: SQL has no way to
    qualify the operator of IS DISTINCT FROM, so pg_dump cannot. Restored as pg_restore would,
    those triggers fail ("operator is not unique: public.geometry = public.geometry"). Here the
    same SQL runs with the PostGIS schema on the search path, as when the triggers were made."""
    from psycopg import sql
    if not entries:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".list") as listing:
        listing.write("\n".join(entries) + "\n")
        listing.flush()
        script = subprocess.run(  # noqa: S603
            [pg_restore, f"--use-list={listing.name}", "--file=-", dump], capture_output=True, text=True, check=True
        ).stdout
    if script.count(HEADER_SEARCH_PATH) != 1:
        raise Failure("unexpected pg_restore script for the triggers (no single search_path header)")
    # The script is psql's: recent pg_restore brackets it with \restrict KEY … \unrestrict KEY,
    # which forbid other psql meta-commands in between. It is run here without psql (so no
    # meta-command could run at all): those two lines go, and any other is refused.
    lines = []
    for line in script.splitlines():
        if re.match(r"^\\(restrict|unrestrict) \S+$", line):
            continue
        if line.startswith("\\"):
            raise Failure(f"unexpected psql meta-command in the triggers' script: {line[:60]}")
        lines.append(line)
    script = "\n".join(lines) + "\n"
    found = rows(target, "SELECT n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
                         " WHERE x.extname = 'postgis'")
    postgis_schema = found[0][0] if found else "public"
    search_path = f"{postgis_schema}, pg_catalog"
    script = script.replace(
        HEADER_SEARCH_PATH,
        f"SELECT pg_catalog.set_config('search_path', {sql.Literal(search_path).as_string(target)}, false);",
    )
    with target.transaction():
        target.execute(script.encode())
    target.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)")


def cmd_restore(args: argparse.Namespace) -> None:
    import psycopg
    name = valid_name(args.name)
    started = time.monotonic()
    with connect(name, autocommit=True) as target:
        plan = plan_restore(args.pg_restore, args.dump, target)
        for line in plan.skipped:
            say(f"restore: left out (the new database has it from template1, or it is empty): {line.split(' ', 3)[3].strip()}")
        with tempfile.TemporaryDirectory() as tmp:
            main_list = Path(tmp) / "main.list"
            main_list.write_text("\n".join(plan.main) + "\n", encoding="utf-8")
            command = [args.pg_restore, "--exit-on-error", "--verbose", f"--use-list={main_list}", f"--dbname={name}"]
            # One transaction: a failure leaves nothing half-restored. -j N is faster on a big
            # database and cannot be one transaction (the database is dropped on failure anyway).
            command += ["--single-transaction"] if args.jobs <= 1 else [f"--jobs={args.jobs}"]
            command.append(args.dump)
            tables = sum(1 for line in plan.main if TOC_TABLE_DATA.match(line))
            progress = Progress(
                prefix="restore", data_marker="processing data for table", tables=tables,
                phases=[
                    ("creating", "pg_restore: creating the schema"),
                    ("processing data", "pg_restore: loading table data"),
                    ("creating INDEX", "pg_restore: creating indexes, constraints, grants and row-level security"),
                ],
            )
            say(f"restore: pg_restore {'--single-transaction' if args.jobs <= 1 else f'--jobs={args.jobs}'} into {name}")
            run_verbose(command, progress)
        try:
            restore_triggers(args.pg_restore, args.dump, plan.triggers, target)
        except psycopg.Error as error:
            raise Failure(f"restoring the triggers failed: {str(error).strip()}") from None
        say(f"restore: {sum(1 for line in plan.triggers if ' TRIGGER ' in line and '; 2620 ' in line)} triggers "
            f"created (second pass, search_path with PostGIS)")
    say(f"restore: pg_restore done in {time.monotonic() - started:.1f} s")


# ---------------------------------------------------------------------------------------------
# Comparing a database with a manifest


def differences(kind: str, expected: dict[str, Any], found: dict[str, Any], limit: int = 12) -> Iterator[str]:
    problems = []
    for key in sorted(expected.keys() | found.keys()):
        if key not in found:
            problems.append(f"{kind} {key}: missing (manifest: {expected[key]})")
        elif key not in expected:
            problems.append(f"{kind} {key}: not in the manifest (found: {found[key]})")
        elif expected[key] != found[key]:
            problems.append(f"{kind} {key}: manifest {expected[key]}, found {found[key]}")
    yield from problems[:limit]
    if len(problems) > limit:
        yield f"{kind}: … and {len(problems) - limit} more differences"


def cmd_compare(args: argparse.Namespace) -> None:
    import psycopg
    manifest = load_manifest(args.manifest)
    name = valid_name(args.name)
    with connect(name) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        counts = row_counts(conn)
        heads = chain_heads(conn)
        # What each chain holds at the manifest's head position: the same event (a chain only
        # extended since), another one (rewritten), or nothing (cut short).
        at_manifest_head: dict[str, str | None] = {}
        if heads is not None:
            for head in manifest.get("audit_chain_heads") or []:
                found = rows(
                    conn,
                    "SELECT hash FROM public.audit_auditevent WHERE COALESCE(municipality_id, 0) = %s AND chain_seq = %s",
                    [head["municipality_id"] or 0, head["last_chain_seq"]],
                )
                at_manifest_head[str(head["municipality_id"])] = found[0][0] if found else None
        applied = migrations(conn)
        schema = schema_fingerprint(conn)
        facts = server_facts(conn)
        conn.rollback()

    failed: list[str] = []
    summary: list[str] = [f"{len(counts)} tables"]

    count_problems = list(differences("table", manifest["row_counts"], counts))
    if count_problems:
        failed += count_problems
        summary.append("ROW COUNTS DIFFER")
    else:
        say(f"restore: row counts identical: {len(counts)} tables, {sum(counts.values()):,} rows")
        summary.append("row counts identical")

    schema_problems: list[str] = []
    for category in SCHEMA_CATEGORIES:
        schema_problems += differences(category, manifest["schema"].get(category, {}), schema.get(category, {}))
    schema_problems += differences("migrations of", manifest["migrations"], applied)
    if schema_problems:
        failed += schema_problems
        summary.append("SCHEMA DIFFERS")
    else:
        sizes = (f"{len(schema['policies'])} policies, grants on {len(schema['grants'])} relations, "
                 f"{len(schema['functions'])} functions, {len(schema['triggers'])} triggers")
        say(f"restore: owners, grants, row-level security, policies, functions, triggers, indexes and "
            f"constraints identical ({sizes}); migrations identical")
        summary.append("owners, grants and policies identical")

    for extension, wanted in manifest["extensions"].items():
        have = facts["extensions"].get(extension)
        if have is None:
            failed.append(f"extension {extension}: missing")
        elif have["version"] != wanted["version"]:
            say(f"restore: note: extension {extension} is version {have['version']} here, {wanted['version']} in the source")
    for setting in ("database_acl", "database_settings"):
        if manifest.get(setting) and manifest[setting] != facts[setting]:
            say(f"restore: note: the source database had {setting.replace('_', ' ')} {manifest[setting]}; "
                "database-level settings are not in a dump of its contents: set them by hand if needed")

    # verify_audit walks one chain per municipality (and one for the events without one).
    towns = counts.get("neighborhoods_municipality", 0)
    if args.audit == "broken":
        failed.append("manage.py verify_audit failed: a broken audit chain, or an error (its output is above)")
        summary.append("AUDIT VERIFICATION FAILED")
    elif args.audit == "intact":
        summary.append(f"audit chains intact ({towns} municipalit{'y' if towns == 1 else 'ies'})")
    else:
        summary.append("audit chains not verified (this checkout has no manage.py verify_audit)")
    expected_heads = manifest.get("audit_chain_heads")
    if expected_heads is None:
        summary.append("no audit chain heads in this backup's manifest")
    else:
        by_key = {str(h["municipality_id"]): h for h in (heads or [])}
        expected_by_key = {str(h["municipality_id"]): h for h in expected_heads}
        head_problems = []
        for key in sorted(expected_by_key.keys() | by_key.keys()):
            want, have = expected_by_key.get(key), by_key.get(key)
            town = (want or have or {}).get("code") or "(events without a municipality)"
            if want is None:
                head_problems.append(f"audit chain {town}: not in the manifest")
            elif have is None:
                head_problems.append(f"audit chain {town}: missing (manifest head #{want['last_chain_seq']})")
            elif (want["last_chain_seq"], want["last_hash"]) != (have["last_chain_seq"], have["last_hash"]):
                held = at_manifest_head.get(key)
                how = (
                    "events were added after it" if held == want["last_hash"]
                    else "the chain is shorter" if held is None
                    else f"the chain was rewritten at or before #{want['last_chain_seq']}"
                )
                head_problems.append(
                    f"audit chain {town}: head #{have['last_chain_seq']} {have['last_hash'][:16]}…, the manifest says "
                    f"#{want['last_chain_seq']} {want['last_hash'][:16]}… ({how})"
                )
        if head_problems:
            failed += head_problems
            summary.append("CHAIN HEADS DIFFER FROM THE MANIFEST")
        elif expected_heads:
            summary.append(f"chain heads match the manifest ({plural(len(expected_heads), 'chain')})")
        else:
            summary.append("no audit events (no chain heads to compare)")

    line = f"{name}: " + ", ".join(summary)
    if failed:
        for problem in failed:
            print(f"restore: DIFFERS: {problem}", file=sys.stderr)
        raise Failure(f"verification failed for {line}")
    say(f"restored into {line}")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pgenv")
    p.add_argument("variable")
    p = sub.add_parser("url")
    p.add_argument("variable")
    p.add_argument("--database")
    p.add_argument("--mask", action="store_true")
    sub.add_parser("pgbin")
    p = sub.add_parser("dump")
    p.add_argument("--pg-dump", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--lock-wait-timeout", default="120s")
    p = sub.add_parser("check-file")
    p.add_argument("manifest")
    p.add_argument("dump")
    for command in ("create-db", "drop-db"):
        p = sub.add_parser(command)
        p.add_argument("name")
    p = sub.add_parser("restore")
    p.add_argument("--pg-restore", required=True)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("dump")
    p.add_argument("name")
    p = sub.add_parser("compare")
    p.add_argument("manifest")
    p.add_argument("name")
    p.add_argument("--audit", choices=["intact", "broken", "unavailable"], required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "pgenv":
            print("\n".join(pgenv(args.variable)))
            return 0
        if args.command == "url":
            print(url_for(args.variable, args.database, args.mask))
            return 0
    except Failure as failure:
        print(f"{PROG}: {failure}", file=sys.stderr)
        return 1
    import psycopg

    commands = {
        "pgbin": cmd_pgbin,
        "dump": cmd_dump,
        "check-file": cmd_check_file,
        "create-db": cmd_create_db,
        "drop-db": cmd_drop_db,
        "restore": cmd_restore,
        "compare": cmd_compare,
    }
    try:
        commands[args.command](args)
    except Failure as failure:
        print(f"{PROG}: {failure}", file=sys.stderr)
        return 1
    except psycopg.Error as error:
        print(f"{PROG}: database error: {str(error).strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
