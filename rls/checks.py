"""`manage.py check --deploy` warns when the application's database connection could step over
row-level security or the append-only audit log: a superuser, a role with BYPASSRLS, or the
owner of the tables."""

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connections

from rls.policies import unclassified


@register(Tags.security, deploy=True)
def check_application_role(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT r.rolname, r.rolsuper, r.rolbypassrls, "
                "       EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = 'public' AND t.tableowner = r.rolname) "
                "  FROM pg_roles r WHERE r.rolname = session_user"
            )
            row = cursor.fetchone()
    except DatabaseError as exc:
        return [Warning(f"Could not inspect the application's database role: {exc}", id="rls.W004")]
    if row is None:
        return []
    name, superuser, bypass, owns_tables = row
    found = []
    if superuser:
        found.append(Warning(
            f"DATABASE_URL connects as {name!r}, a superuser: row-level security and the append-only "
            "audit log do not bind it.",
            hint="Connect the application as its own role (README: Database roles); keep the owner's "
                 "URL in DATABASE_OWNER_URL for migrations.",
            id="rls.W001",
        ))
    if bypass:
        found.append(Warning(f"DATABASE_URL's role {name!r} has BYPASSRLS.", id="rls.W002"))
    if owns_tables:
        found.append(Warning(
            f"DATABASE_URL connects as {name!r}, which owns the tables: it could drop the policies "
            "and change the audit log.",
            hint="Run migrations as the owner (DATABASE_OWNER_URL) and the application as another role.",
            id="rls.W003",
        ))
    return found


@register(Tags.models)
def check_every_table_classified(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [Error(problem, id="rls.E001") for problem in unclassified()]
