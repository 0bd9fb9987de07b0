from datetime import datetime
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.pagination import paginate

from api.pagination import Paginated
from audit.access import visible_audit_events

router = Router(tags=["audit"])


class AuditEventOut(Schema):
    id: int
    at: datetime
    actor_id: int | None
    actor_username: str
    actor_role: str
    device_token_id: UUID | None
    action: str
    object_type: str
    object_id: str
    basis: str


@router.get("/events", response=list[AuditEventOut], summary="Who read which sensitive detail (監査ログ)")
@paginate(Paginated)
def list_events(
    request: HttpRequest,
    object_type: str | None = None,
    object_id: str | None = None,
    actor_id: int | None = None,
    since: datetime | None = None,
):
    events = visible_audit_events(request.auth)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    if actor_id:
        events = events.filter(actor_id=actor_id)
    if since:
        events = events.filter(at__gte=since)
    return events
