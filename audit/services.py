"""Recording reads of sensitive detail and decisions that change what the field sees. Call
`record_read` from the service or handler that hands sensitive detail to a person, `record_change`
where a person decides (a campaign started or closed, a conflict resolved); the row cannot be changed
or deleted afterwards."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from audit.models import AuditEvent


def record_access(
    *,
    actor,
    object_type: str,
    object_id: Any,
    basis: str,
    action: str = AuditEvent.Action.READ,
    device_token_id=None,
    ip: str | None = None,
    detail: dict | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        municipality_id=getattr(actor, "municipality_id", None),
        actor=actor,
        actor_username=actor.get_username(),
        actor_role=getattr(actor, "role", ""),
        device_token_id=device_token_id,
        ip=ip,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        basis=basis,
        detail=detail or {},
    )


def record_read(request: HttpRequest, obj: models.Model, *, basis: str, detail: dict | None = None) -> AuditEvent:
    """Audit that the request's user read `obj`'s sensitive detail, on the stated basis."""
    return _record_request(request, obj, basis=basis, detail=detail, action=AuditEvent.Action.READ)


def record_change(request: HttpRequest, obj: models.Model, *, basis: str, detail: dict | None = None) -> AuditEvent:
    """Audit a decision the request's user made about `obj` that changes what others see or do (a
    campaign started or closed, an edit conflict resolved); `detail` says what changed."""
    return _record_request(request, obj, basis=basis, detail=detail, action=AuditEvent.Action.CHANGE)


def record_export(request: HttpRequest, obj: models.Model, *, basis: str, detail: dict | None = None) -> AuditEvent:
    """Audit that the request's user took `obj`'s data away (an export file downloaded); `detail`
    says what and how many rows."""
    return _record_request(request, obj, basis=basis, detail=detail, action=AuditEvent.Action.EXPORT)


def _record_request(request: HttpRequest, obj: models.Model, *, basis: str, detail: dict | None, action: str) -> AuditEvent:
    from accounts.services import client_ip  # accounts records its own events through this module

    token = getattr(request, "device_token", None)
    return record_access(
        actor=request.auth if hasattr(request, "auth") and request.auth else request.user,
        object_type=obj._meta.label_lower,
        object_id=obj.pk,
        basis=basis,
        action=action,
        device_token_id=token.pk if token else None,
        ip=client_ip(request),
        detail=detail,
    )
