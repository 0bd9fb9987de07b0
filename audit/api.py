from ninja import Router
from ninja.pagination import paginate

from api.auth import AuthedRequest
from api.pagination import Paginated
from audit.access import visible_audit_events
from audit.schemas import AuditEventOut
from backend.dates import FactDateTime

router = Router(tags=["audit"])


@router.get("/events", response=list[AuditEventOut], summary="Who read which sensitive detail (監査ログ)")
@paginate(Paginated)
def list_events(
    request: AuthedRequest,
    object_type: str | None = None,
    object_id: str | None = None,
    actor_id: int | None = None,
    since: FactDateTime | None = None,
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
