"""Installs the database side of tenancy, as the schema owner, after every migrate (idempotent):

1. the application role's privileges: SELECT/INSERT/UPDATE/DELETE on the project's tables (and on
   tables the owner creates later: default privileges), sequences, and for append-only tables
   (the audit log) SELECT and INSERT only: no UPDATE, DELETE or TRUNCATE, so no session setting
   (`pgtrigger.ignore`, `session_replication_role`) can let a change through;
2. the functions the policies and the sign-in use (`tsunagu_tenant()`, `tsunagu_platform()`, and the
   SECURITY DEFINER `tsunagu_scope_of_*` lookups and `tsunagu_token_holder`, executable by the
   application role only);
3. row-level security on every classified table (rls.policies), enabled, not forced: the
   owner (migrations, backups) is not subject to it; the application role always is.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from rls.policies import APPEND_ONLY_TABLES, all_policies

POLICY = "tsunagu_tenant"

FUNCTIONS = """
CREATE OR REPLACE FUNCTION tsunagu_tenant() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT NULLIF(current_setting('tsunagu.municipality_id', true), '')::bigint $$;

CREATE OR REPLACE FUNCTION tsunagu_platform() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(current_setting('tsunagu.platform', true), '') = 'on' $$;

CREATE OR REPLACE FUNCTION tsunagu_scope_of_user(p_user_id bigint)
RETURNS TABLE (municipality_id bigint, platform boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$ SELECT u.municipality_id, u.municipality_id IS NULL AND u.is_superuser
     FROM accounts_user u WHERE u.id = p_user_id AND u.is_active $$;

CREATE OR REPLACE FUNCTION tsunagu_scope_of_username(p_username text)
RETURNS TABLE (municipality_id bigint, platform boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$ SELECT u.municipality_id, u.municipality_id IS NULL AND u.is_superuser
     FROM accounts_user u WHERE u.username = p_username AND u.is_active $$;

CREATE OR REPLACE FUNCTION tsunagu_scope_of_token(p_token_hash text)
RETURNS TABLE (municipality_id bigint, platform boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$ SELECT u.municipality_id, false
     FROM accounts_devicetoken t JOIN accounts_user u ON u.id = t.user_id
    WHERE t.token_hash = p_token_hash AND u.municipality_id IS NOT NULL $$;

-- The token check of every API request in one statement (accounts.services.resolve_token): the
-- token, its holder, the holder's municipality and corporation, as the tables' own row types (so
-- later columns follow). Only for the one token whose hash the caller proved it holds, and only
-- for holders of a municipality. PL/pgSQL, not SQL: a SECURITY DEFINER SQL function is never
-- inlined and plans its body at every call (0.25 ms), PL/pgSQL keeps its plan (0.04 ms).
CREATE OR REPLACE FUNCTION tsunagu_token_holder(p_token_hash text)
RETURNS TABLE (token accounts_devicetoken, holder accounts_user, municipality neighborhoods_municipality,
               corporation visits_partnerorganization)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS
$$ BEGIN
  RETURN QUERY
  SELECT t, u, m, p
    FROM accounts_devicetoken t
    JOIN accounts_user u ON u.id = t.user_id
    JOIN neighborhoods_municipality m ON m.id = u.municipality_id
    LEFT JOIN visits_partnerorganization p ON p.id = u.partner_organization_id
   WHERE t.token_hash = p_token_hash;
END $$;
"""

LOOKUPS = (
    "tsunagu_scope_of_user(bigint)", "tsunagu_scope_of_username(text)", "tsunagu_scope_of_token(text)",
    "tsunagu_token_holder(text)",
)


def _execute(cursor: Any, statement: sql.Composable | str) -> None:
    if isinstance(statement, sql.Composable):
        statement = statement.as_string(cursor.connection)
    cursor.execute(statement)


def install(connection: BaseDatabaseWrapper, app_role: str) -> None:
    role = sql.Identifier(app_role)
    policies = all_policies()
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        _execute(cursor, FUNCTIONS)
        for signature in LOOKUPS:
            _execute(cursor, sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(sql.SQL(signature)))
            _execute(cursor, sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(signature), role))

        _execute(cursor, sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        _execute(cursor, sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(role))
        _execute(cursor, sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(role))
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"
        )
        owned = [row[0] for row in cursor.fetchall()]
        append_only = {p.table for p in policies if p.label in APPEND_ONLY_TABLES}
        for table in owned:
            name = sql.Identifier(table)
            _execute(cursor, sql.SQL("REVOKE ALL ON {} FROM PUBLIC, {}").format(name, role))
            grant = "SELECT, INSERT" if table in append_only else "SELECT, INSERT, UPDATE, DELETE"
            _execute(cursor, sql.SQL("GRANT " + grant + " ON {} TO {}").format(name, role))
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user"
        )
        for (sequence,) in cursor.fetchall():
            _execute(cursor, sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), role))

        cursor.execute(
            "SELECT tablename FROM pg_policies WHERE schemaname = 'public' AND policyname = %s", [POLICY]
        )
        for (table,) in cursor.fetchall():
            _execute(cursor, sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(POLICY), sql.Identifier(table)))
        for policy in policies:
            table = sql.Identifier(policy.table)
            _execute(cursor, sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
            _execute(cursor, sql.SQL("CREATE POLICY {} ON {} USING ({}) WITH CHECK ({})").format(
                sql.Identifier(POLICY), table, sql.SQL(policy.using()), sql.SQL(policy.check()),
            ))


def install_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    install(connections[using], settings.TSUNAGU_DB_APP_ROLE)
