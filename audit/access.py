from django.db.models import QuerySet

from accounts.roles import USER_MANAGERS
from audit.models import AuditEvent
from backend.errors import Forbidden


def visible_audit_events(user) -> QuerySet[AuditEvent]:
    """Coordinators and administrators read their municipality's audit trail; nobody else."""
    if user.role not in USER_MANAGERS:
        raise Forbidden("Only coordinators and administrators read the audit trail.")
    return AuditEvent.objects.filter(municipality_id=user.municipality_id)
