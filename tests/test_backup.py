"""The backup and restore drill, as a test: scripts/backup.sh dumps the test database (as the schema
owner) with a manifest, scripts/restore.sh restores it into a new database and proves the copy
whole: same rows in every table, same owners, grants, policies and functions, audit chains intact
and ending where the manifest says. A damaged dump is refused, a failed dump leaves no manifest,
and a chain rewritten after the backup (consistently, so verify_audit alone cannot tell) is caught
by the manifest's chain heads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from accounts.models import User
from accounts.roles import Role
from audit.models import AuditEvent
from audit.services import record_access
from backend.tenancy import platform_scope, scope
from neighborhoods.models import Household, Municipality, Resident
from outreach.models import Concern, OutreachCase, WatchArrangement
from tests import factories
from visits.models import Photo, VisitRecord

ROOT = Path(__file__).resolve().parent.parent
OWNER, APP = "tsunagu_owner", "tsunagu_app"
POPULATED = [Municipality, Household, Resident, User, AuditEvent, Concern, OutreachCase, WatchArrangement,
             VisitRecord, Photo]


def url(user: str, database: str) -> str:
    db = settings.DATABASES["default"]
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") and user == db.get("USER") else ""
    return f"postgis://{user}{password}@{db['HOST']}:{db['PORT']}/{database}"


def libpq(user: str, database: str) -> dict:
    db = settings.DATABASES["default"]
    return {"host": db["HOST"], "port": db["PORT"], "dbname": database, "user": user, "connect_timeout": 5}


def run(script: str, *args: str, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    """One of the scripts, against the test database (or the environment given)."""
    name = settings.DATABASES["default"]["NAME"]
    full = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    full.update({"DATABASE_OWNER_URL": url(OWNER, name), "DATABASE_URL": url(APP, name), **(env or {})})
    return subprocess.run(
        [str(ROOT / "scripts" / script), *args], cwd=ROOT, env=full, capture_output=True, text=True,
        timeout=timeout,
    )


def drop(database: str) -> None:
    with psycopg.connect(**libpq(OWNER, "postgres"), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(database)))


def exists(database: str) -> bool:
    with psycopg.connect(**libpq(OWNER, "postgres")) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is not None


@pytest.fixture
def restored():
    """The name of the database the drill restores into, dropped afterwards whatever happened."""
    name = f"{settings.DATABASES['default']['NAME']}_restore"
    drop(name)
    yield name
    drop(name)


def backup(tmp_path: Path) -> tuple[Path, dict]:
    result = run("backup.sh", env={"BACKUP_DIR": str(tmp_path / "backups")})
    assert result.returncode == 0, result.stdout + result.stderr
    (dump,) = (tmp_path / "backups").glob("*.dump")
    manifest = json.loads(dump.with_name(dump.name.removesuffix(".dump") + ".manifest.json").read_text())
    return dump, manifest


# --- what both databases are asked ----------------------------------------------------------------

COUNT_TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' "
    "AND table_name <> 'spatial_ref_sys' ORDER BY 1"
)
POLICIES = "SELECT tablename, policyname, permissive, roles, cmd, qual, with_check FROM pg_policies ORDER BY 1, 2"
GRANTS = (
    "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
    "WHERE grantee = 'tsunagu_app' AND table_schema = 'public' ORDER BY 1, 2"
)
ROW_SECURITY = (
    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"
)
FUNCTIONS = (
    "SELECT p.proname, pg_get_userbyid(p.proowner), p.prosecdef, p.proconfig, "
    "has_function_privilege('tsunagu_app', p.oid, 'EXECUTE') FROM pg_proc p "
    "WHERE p.proname LIKE 'tsunagu\\_%' OR p.proname LIKE 'audit\\_event\\_%' ORDER BY 1"
)


def ask(cursor, query: str) -> list[tuple]:
    cursor.execute(query)
    return [tuple(row) for row in cursor.fetchall()]


def counts(cursor, tables) -> dict[str, int]:
    found = {}
    for table in tables:
        cursor.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(table)).as_string())
        found[table] = cursor.fetchone()[0]
    return found


# --- the drill ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_backup_restores_into_a_new_database_whole_and_a_rewritten_chain_is_caught(
    town, other_town, restored, tmp_path
):
    town.with_outreach()
    town.with_photo()
    other_town.with_outreach()
    for t, n in ((town, 3), (other_town, 2)):
        with scope(t.municipality.id):
            for i in range(n):
                record_access(actor=t.users[Role.COORDINATOR.value], object_type="neighborhoods.resident",
                              object_id=t.resident.pk, basis="role:coordinator", detail={"n": i})
    operator = User.objects.create_superuser("platform-op", "op@example.jp", factories.PASSWORD)
    with platform_scope():
        record_access(actor=operator, object_type="accounts.user", object_id=operator.pk, basis="platform")

    dump, manifest = backup(tmp_path)

    # The manifest: every table, counted exactly as the database counts it now (nothing changed
    # since the backup); the tables this test filled are not empty.
    with connection.cursor() as cursor:
        tables = [row[0] for row in ask(cursor, COUNT_TABLES)]
        source_counts = counts(cursor, tables)
        source = {query: ask(cursor, query) for query in (POLICIES, GRANTS, ROW_SECURITY, FUNCTIONS)}
    assert manifest["row_counts"] == source_counts
    for model in POPULATED:
        assert manifest["row_counts"][model._meta.db_table] > 0, model
    assert manifest["database"] == settings.DATABASES["default"]["NAME"]
    assert manifest["dumped_as"] == OWNER
    assert manifest["postgis_version"]
    assert manifest["migrations"]["audit"]["last"] >= "0002"
    assert manifest["dump"]["bytes"] == dump.stat().st_size
    assert dump.stat().st_mode & 0o077 == 0  # personal data: the owner's eyes only
    heads = {head["code"]: head for head in manifest["audit_chain_heads"]}
    assert {code: head["last_chain_seq"] for code, head in heads.items()} == {
        town.municipality.code: 3, other_town.municipality.code: 2, None: 1,
    }
    last = AuditEvent.objects.filter(municipality=other_town.municipality).order_by("chain_seq").last()
    assert heads[other_town.municipality.code]["last_hash"] == last.hash

    result = run("restore.sh", str(dump), restored)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"restored into {restored}: {len(tables)} tables, row counts identical" in out
    assert "audit chains intact (2 municipalities), chain heads match the manifest (3 chains)" in out
    assert f"DATABASE_URL=postgis://{APP}@" in out and f"/{restored}" in out

    # Asked independently of the scripts: the restored database has the same rows, policies,
    # grants to the application, row-level security and SECURITY DEFINER functions.
    with psycopg.connect(**libpq(OWNER, restored)) as conn, conn.cursor() as cursor:
        assert counts(cursor, tables) == source_counts
        copy = {query: ask(cursor, query) for query in (POLICIES, GRANTS, ROW_SECURITY, FUNCTIONS)}
    for query, rows in source.items():
        assert copy[query] == rows, query
    assert len(source[POLICIES]) > 40
    assert {p for t, p in source[GRANTS] if t == AuditEvent._meta.db_table} == {"INSERT", "SELECT"}
    assert ("accounts_user", True, False, OWNER) in source[ROW_SECURITY]
    scope_functions = [f for f in source[FUNCTIONS] if f[0].startswith("tsunagu_scope_of_")]
    assert len(scope_functions) == 3
    assert all(owner == OWNER and definer and executable for _name, owner, definer, _cfg, executable in scope_functions)

    # And the policies hold there: the application's role sees one municipality's households in
    # its scope and nothing outside any scope.
    with psycopg.connect(**libpq(APP, restored)) as conn:
        assert conn.execute("SELECT count(*) FROM neighborhoods_household").fetchone()[0] == 0
        conn.execute("SELECT set_config('tsunagu.municipality_id', %s, false)", [str(town.municipality.id)])
        seen = conn.execute("SELECT count(*) FROM neighborhoods_household").fetchone()[0]
    assert seen == Household.objects.filter(municipality=town.municipality).count() > 0

    # A chain rewritten after the backup: the other town's last event replaced, hash and all, by
    # the owner (past the append-only trigger). The chain is consistent, so verify_audit passes;
    # its head is not the manifest's.
    with psycopg.connect(**libpq(OWNER, restored)) as conn:
        (protect,) = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'pgtrigger\\_audit\\_append\\_only\\_%'"
        ).fetchone()
        table = psycopg.sql.Identifier(AuditEvent._meta.db_table)
        conn.execute(psycopg.sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(table, psycopg.sql.Identifier(protect)))
        conn.execute("DELETE FROM audit_auditevent WHERE id = %s", [last.id])
        conn.execute(psycopg.sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(table, psycopg.sql.Identifier(protect)))
        conn.execute(
            "INSERT INTO audit_auditevent (municipality_id, actor_username, actor_role, action, object_type, "
            "object_id, basis, detail) VALUES (%s, 'someone', '', 'read', 'neighborhoods.resident', '1', 'none', '{}')",
            [other_town.municipality.id],
        )
    result = run("restore.sh", "--verify-only", str(dump), restored)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{other_town.municipality.name} ({other_town.municipality.code}): 2 events, intact" in out
    assert f"audit chain {other_town.municipality.code}: head #2 " in out
    assert f"the manifest says #2 {last.hash[:16]}… (the chain was rewritten at or before #2)" in out
    assert "audit chains intact (2 municipalities), CHAIN HEADS DIFFER FROM THE MANIFEST" in out
    assert exists(restored)  # kept for inspection


def failing_tools(folder: Path) -> Path:
    """Stand-ins for pg_dump and pg_restore of the server's version that fail half-way: pg_dump
    after writing part of its file, pg_restore after listing an empty dump."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        major = int(cursor.fetchone()[0]) // 10000
    folder.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        (folder / tool).write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = --version ]; then echo "{tool} (PostgreSQL) {major}.0"; exit 0; fi\n'
            'if [ "$1" = --list ]; then exit 0; fi\n'
            'for a in "$@"; do case "$a" in --file=*) echo partial > "${a#--file=}" ;; esac; done\n'
            f'echo "{tool}: error: connection lost" >&2; exit 1\n'
        )
        (folder / tool).chmod(0o755)
    return folder


@pytest.mark.django_db(transaction=True)
def test_a_failed_dump_leaves_no_dump_and_no_manifest(tmp_path):
    fake = failing_tools(tmp_path / "bin")
    result = run("backup.sh", env={"BACKUP_DIR": str(tmp_path / "backups"), "PGBIN": str(fake)})
    assert result.returncode == 1
    assert "pg_dump: error: connection lost" in result.stderr
    assert "FAILED: no backup was written" in result.stderr
    assert list((tmp_path / "backups").iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_what_it_cannot_trust_and_leaves_nothing_half_done(restored, tmp_path):
    dump, manifest = backup(tmp_path)

    # Never over an existing database.
    result = run("restore.sh", str(dump), settings.DATABASES["default"]["NAME"])
    assert result.returncode == 1
    assert "already exists: a restore goes into a new database only" in result.stderr

    # pg_restore fails half-way: the new database goes.
    result = run("restore.sh", str(dump), restored, env={"PGBIN": str(failing_tools(tmp_path / "bin"))})
    assert result.returncode == 1
    assert "pg_restore: error: connection lost" in result.stderr
    assert f"the incomplete database {restored} was dropped" in result.stderr
    assert not exists(restored)

    # A dump without its manifest cannot be checked.
    alone = tmp_path / "elsewhere" / dump.name
    alone.parent.mkdir()
    shutil.copy(dump, alone)
    result = run("restore.sh", str(alone), restored)
    assert result.returncode == 1
    assert f"no manifest {alone.with_name(alone.stem + '.manifest.json')}" in result.stderr

    # One byte changed: refused before anything is made, naming the file.
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    result = run("restore.sh", str(dump), restored)
    assert result.returncode == 1
    assert f"refusing to restore {dump}: it does not match its manifest" in result.stderr
    assert manifest["dump"]["sha256"] in result.stderr
    assert not exists(restored)
