"""Which rows of which table a session may see: the row-level security policies, declared once.

Every table of every model is classified, and a table nobody classified is an error (the schema
test and `install` both refuse it), so a new model cannot arrive without a policy:

- **tenant**: the table carries a municipality; a row is visible and writable only in that
  municipality's scope (`tsunagu_tenant()`). Most tables, and all people data.
- **structure**: a tenant table a platform operator's tool may also see across municipalities
  (users, 自治会, corporations): people data is never in this list.
- **child**: the table carries its municipality through a parent (a case's contacts, a
  concern's transitions …); a row is visible only when its parent row is.
- **audit**: the audit log: read in the municipality's scope, written there or without one (a
  failed login belongs to no municipality); never changed (privileges: rls.schema).
- **exempt**: tables without tenant data, each with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import models

TENANT = "tenant"
STRUCTURE = "structure"
CHILD = "child"
AUDIT = "audit"
EXEMPT = "exempt"

# Tenant tables the platform operator's admin shows across municipalities: structure, no residents.
STRUCTURE_TABLES = {
    "accounts.User",
    "accounts.UserHistory",
    "neighborhoods.District",
    "neighborhoods.DailyLifeArea",
    "neighborhoods.Neighborhood",
    "visits.PartnerOrganization",
    "maps.CoverageRefresh",
}

# Tables whose municipality is their parent's: model label -> the foreign key to the parent.
CHILD_TABLES = {
    "accounts.DeviceToken": "user",
    "accounts.User_neighborhoods": "user",
    "accounts.User_groups": "user",
    "accounts.User_user_permissions": "user",
    "visits.WorkerAvailability": "worker",
    "visits.WorkerDayOff": "worker",
    "visits.CampaignNeighborhood": "campaign",
    "visits.DeviceHolding": "device",
    "visits.PullPage": "device",
    "outreach.WatchCheckIn": "arrangement",
    "outreach.ConcernTransition": "concern",
    "outreach.CaseContact": "case",
    "outreach.CaseMeeting": "case",
    "outreach.SupportPlan": "case",
}

AUDIT_TABLES = {"audit.AuditEvent"}

EXEMPT_TABLES = {
    "neighborhoods.Municipality": "public facts: the municipality's code and name",
    "admin.LogEntry": "the platform operators' admin log",
    "auth.Permission": "Django's permission names",
    "auth.Group": "Django's groups (unused)",
    "auth.Group_permissions": "Django's groups (unused)",
    "contenttypes.ContentType": "Django's model names",
    "sessions.Session": "signed-in browsers, read before anyone is known",
    "pghistory.Context": "who made a tracked write (a user id and a URL)",
    "axes.AccessAttempt": "failed logins by username and address, read before anyone is known",
    "axes.AccessFailureLog": "failed logins by username and address, read before anyone is known",
    "axes.AccessAttemptExpiration": "failed logins by username and address, read before anyone is known",
    "axes.AccessLog": "logins by username and address, read before anyone is known",
    "django_q.Task": "the job queue's results: ids and counts (jobs enter their own tenant scope)",
    "django_q.Schedule": "the job queue's schedule",
    "django_q.OrmQ": "the job queue",
}

# Written only by INSERT: the application role gets SELECT and INSERT, nothing else.
APPEND_ONLY_TABLES = AUDIT_TABLES


@dataclass(frozen=True)
class TablePolicy:
    label: str
    table: str
    kind: str
    # For child tables: the parent's table, its key, and the column that points at it.
    parent_table: str = ""
    parent_key: str = ""
    column: str = ""

    def using(self) -> str:
        tenant = "municipality_id = tsunagu_tenant()"
        if self.kind == TENANT:
            return tenant
        if self.kind == STRUCTURE:
            return f"({tenant} OR tsunagu_platform())"
        if self.kind == AUDIT:
            return f"({tenant} OR (municipality_id IS NULL AND tsunagu_platform()))"
        if self.kind == CHILD:
            # Names from the models' metadata, not from input.
            return (
                f'EXISTS (SELECT 1 FROM "{self.parent_table}" parent '  # noqa: S608
                f'WHERE parent."{self.parent_key}" = "{self.table}"."{self.column}")'
            )
        raise ValueError(self.kind)

    def check(self) -> str:
        if self.kind == AUDIT:
            return "(municipality_id IS NULL OR municipality_id = tsunagu_tenant())"
        return self.using()


class UnclassifiedTable(Exception):
    pass


def _models() -> list[type[models.Model]]:
    return [
        m
        for m in apps.get_models(include_auto_created=True)
        if m._meta.managed and not m._meta.proxy
    ]


def classify(model: type[models.Model]) -> TablePolicy | None:
    """The policy of a model's table (None for an exempt table)."""
    meta = model._meta
    label = meta.label
    if label in EXEMPT_TABLES:
        return None
    if label in AUDIT_TABLES:
        return TablePolicy(label, meta.db_table, AUDIT)
    if label in CHILD_TABLES:
        field = meta.get_field(CHILD_TABLES[label])
        assert isinstance(field, models.ForeignKey)
        parent = field.related_model._meta
        return TablePolicy(
            label, meta.db_table, CHILD, parent_table=parent.db_table,
            parent_key=str(field.target_field.column), column=str(field.column),
        )
    names = {f.name for f in meta.concrete_fields}
    if "municipality" in names:
        return TablePolicy(label, meta.db_table, STRUCTURE if label in STRUCTURE_TABLES else TENANT)
    raise UnclassifiedTable(
        f"{label} ({meta.db_table}) has no tenant policy: give it a municipality, or list it in "
        "rls/policies.py (CHILD_TABLES or EXEMPT_TABLES, with the reason)"
    )


def all_policies() -> list[TablePolicy]:
    found = [classify(m) for m in _models()]
    return [p for p in found if p is not None]


def unclassified() -> list[str]:
    problems = []
    for model in _models():
        try:
            classify(model)
        except UnclassifiedTable as exc:
            problems.append(str(exc))
    return problems
