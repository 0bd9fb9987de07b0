from django.db import models


class Role(models.TextChoices):
    """One role per user. Access rules per role live in each app's access module."""

    COORDINATOR = "coordinator", "コーディネーター (福祉課・相談支援包括化推進員)"
    SUPERVISOR = "supervisor", "監督者 (閲覧のみ)"
    OUTREACH_WORKER = "outreach_worker", "訪問員 (アウトリーチ受託法人)"
    COMMISSIONER = "commissioner", "民生委員・児童委員"
    ADMIN = "admin", "管理者"


# Roles that see the whole municipality.
MUNICIPALITY_WIDE = frozenset({Role.COORDINATOR, Role.SUPERVISOR, Role.ADMIN})
# Roles that manage users and their devices.
USER_MANAGERS = frozenset({Role.COORDINATOR, Role.ADMIN})

# Who manages whom (accounts.access.may_manage): a manager may create, change and deactivate the
# users of their own municipality whose role ranks no higher than their own, and give no one a role
# that ranks higher than their own. An administrator manages everyone; a coordinator everyone but
# the administrators; the other roles manage no one.
RANK: dict[str, int] = {
    Role.ADMIN: 3,
    Role.COORDINATOR: 2,
    Role.SUPERVISOR: 1,
    Role.OUTREACH_WORKER: 1,
    Role.COMMISSIONER: 1,
}


def rank(role: str) -> int:
    return RANK[role]
