"""The field sync endpoints (../shared/SYNC.md): devices, push, pull, check, forms."""

from typing import Any
from uuid import UUID

from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from accounts.access import municipality_id_of
from api.auth import AuthedRequest
from api.pagination import Paginated
from api.schemas import BodySchema
from backend.errors import InvalidInput
from backend.text import Line
from visits import access, forms
from visits.models import SurveyForm
from visits.sync import engine as sync

router = Router(tags=["sync"])


class DeviceIn(BodySchema):
    device_id: UUID
    name: Line = Field("", max_length=100)
    platform: Line = Field("", max_length=50)


class SyncDeviceOut(Schema):
    device_id: UUID
    name: str
    platform: str
    user_id: int


class OpIn(BodySchema):
    checked_later = frozenset({"data"})  # by the kind's own payload schema (visits.sync.engine), per op

    op_id: UUID
    kind: Line = Field(..., max_length=40)
    data: dict[str, Any]
    base_version: int | None = Field(None, ge=1, le=2**31 - 1)


class PushIn(BodySchema):
    device_id: UUID
    ops: list[OpIn] = Field(..., description=f"At most {sync.MAX_OPS} operations")


class PushOut(Schema):
    results: list[dict]


class PullOut(Schema):
    changes: list[dict]
    purge: list[dict]
    next_cursor: str
    has_more: bool


class CheckIn(BodySchema):
    device_id: UUID
    holdings: dict[str, str] = Field(..., max_length=20)


class FormIn(BodySchema):
    key: str = Field("household-visit", max_length=50, pattern=r"^[a-z0-9-]+$")
    title: Line = Field(..., min_length=1, max_length=200)
    definition: dict[str, Any]


class FormOut(Schema):
    id: int
    key: str
    version: int
    title: str
    definition: dict
    published: bool


@router.post("/devices", response={201: SyncDeviceOut}, summary="Register this device for sync (tied to its token)")
def register_device(request: AuthedRequest, payload: DeviceIn):
    device = sync.register_device(
        user=request.auth, token=getattr(request, "device_token", None), device_id=payload.device_id,
        name=payload.name, platform=payload.platform,
    )
    return Status(201, {"device_id": payload.device_id, "name": device.name, "platform": device.platform, "user_id": device.user_id})


@router.post("/push", response=PushOut, summary="Apply a batch of offline operations, each at most once")
def push(request: AuthedRequest, payload: PushIn):
    access.require_pusher(request.auth)
    device = sync.device_for(user=request.auth, device_id=payload.device_id)
    # Each op's data goes on as the request gave it (parsed by its kind's schema, once, in the engine).
    ops = [{"op_id": str(op.op_id), "kind": op.kind, "data": op.data, "base_version": op.base_version} for op in payload.ops]
    return {"results": sync.push(user=request.auth, device=device, ops=ops)}


@router.get("/pull", response=PullOut, summary="Changes after a cursor, and what to purge")
def pull(request: AuthedRequest, device_id: UUID, cursor: str = "", limit: int = 200):
    if limit < 1 or limit > sync.MAX_PULL_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {sync.MAX_PULL_LIMIT}", details=[{"loc": ["query", "limit"]}])
    device = sync.device_for(user=request.auth, device_id=device_id)
    result = sync.pull(user=request.auth, device=device, cursor=cursor, limit=limit)
    return result.__dict__


@router.post("/check", summary="Compare the device's holdings digest; 409 resync_required on a mismatch")
def check(request: AuthedRequest, payload: CheckIn):
    device = sync.device_for(user=request.auth, device_id=payload.device_id)
    sync.check(device=device, holdings=payload.holdings)
    return {"ok": True}


@router.get("/forms", response=list[FormOut], summary="Published survey form versions")
@paginate(Paginated)
def list_forms(request: AuthedRequest):
    return SurveyForm.objects.filter(municipality_id=municipality_id_of(request.auth), published=True).order_by(
        "key", "-version"
    )


@router.post("/forms", response={201: FormOut}, summary="Publish a new version of a survey form (coordinators)")
def publish_form(request: AuthedRequest, payload: FormIn):
    access.require_coordinator(request.auth, "publish survey forms")
    form = forms.publish_form(
        municipality=request.auth.municipality, key=payload.key, title=payload.title, definition=payload.definition
    )
    return Status(201, form)
