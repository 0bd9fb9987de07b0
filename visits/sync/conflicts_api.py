"""編集の競合 (edit conflicts): an offline household edit that arrived based on a stale version.
Coordinators and supervisors read them; coordinators resolve them (visits/conflicts.py)."""

import datetime as dt
import enum
from typing import Any, Literal
from uuid import UUID

from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from accounts.services import client_ip
from api.auth import AuthedRequest
from api.output import with_output_attrs
from api.pagination import Paginated
from api.schemas import BodySchema, Unchanged, Version
from audit.services import record_read
from backend.text import Note
from neighborhoods.access import residents_basis
from visits.models import ConflictOutcome, EditConflict
from visits.sync import conflicts

router = Router(tags=["conflicts"])


class ConflictState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


class ConflictResolution(enum.StrEnum):
    """keep_server: the household stays as it is; take_device: every field the device proposed is
    applied; merge: the fields chosen as `device` are applied."""

    KEEP_SERVER = conflicts.KEEP_SERVER
    TAKE_DEVICE = conflicts.TAKE_DEVICE
    MERGE = conflicts.MERGE


class ConflictSide(enum.StrEnum):
    SERVER = conflicts.SERVER
    DEVICE = conflicts.DEVICE


class ConflictFilter(Schema):
    state: ConflictState = ConflictState.OPEN
    household_id: UUID | None = None


class ConflictFieldChoicesIn(BodySchema):
    """For merge: which side each field is taken from; every field that differs must be chosen."""

    status: ConflictSide = Unchanged()
    living_arrangement: ConflictSide = Unchanged()
    risk_flags: ConflictSide = Unchanged()
    location: ConflictSide = Unchanged()


class ConflictResolveIn(BodySchema):
    resolution: ConflictResolution
    fields: ConflictFieldChoicesIn | None = Field(None, description="merge only: server or device per field")
    household_version: Version = Field(
        ..., description="The household's version the decision was made on; if it moved on since, 409 stale_version."
    )
    note: Note = Field("", max_length=2000, description="Why (optional)")


class ConflictUserOut(Schema):
    id: int
    username: str
    display_name: str


class ConflictDeviceOut(Schema):
    id: UUID
    name: str
    platform: str


class ConflictHouseholdOut(Schema):
    id: UUID
    external_id: str
    address: str
    version: int


class ConflictOut(Schema):
    id: int
    kind: str
    object_id: str
    household: ConflictHouseholdOut | None = Field(..., description="Its household now (null if it is gone)")
    pushed_by: ConflictUserOut
    device: ConflictDeviceOut
    created_at: dt.datetime
    base_version: int = Field(..., description="The version the device's edit started from")
    server_version: int = Field(..., description="The household's version when the edit arrived")
    current_version: int | None = Field(..., description="The household's version now")
    differing_fields: list[str] = Field(..., description="Proposed fields whose value differs from the server's now")
    state: Literal["open", "resolved"]
    resolved_at: dt.datetime | None
    resolved_by: ConflictUserOut | None
    resolution: ConflictOutcome | None
    resolution_note: str
    applied_fields: list[str] = Field(..., description="The device's fields applied to the household")
    resolved_version: int | None = Field(..., description="The household's version after the resolution")

    @staticmethod
    def resolve_household(obj: EditConflict) -> dict | None:
        return conflicts.household_now(getattr(obj, "household_now", None))

    @staticmethod
    def resolve_pushed_by(obj: EditConflict) -> dict:
        return _user(obj.user)

    @staticmethod
    def resolve_device(obj: EditConflict) -> dict:
        device = obj.op.device
        return {"id": device.pk, "name": device.name, "platform": device.platform}

    @staticmethod
    def resolve_current_version(obj: EditConflict) -> int | None:
        now = getattr(obj, "household_now", None)
        return now["version"] if now else None

    @staticmethod
    def resolve_differing_fields(obj: EditConflict) -> list[str]:
        return conflicts.differing(obj, conflicts.household_now(getattr(obj, "household_now", None)))

    @staticmethod
    def resolve_state(obj: EditConflict) -> str:
        return "open" if obj.resolved_at is None else "resolved"

    @staticmethod
    def resolve_resolved_by(obj: EditConflict) -> dict | None:
        return _user(obj.resolved_by) if obj.resolved_by else None

    @staticmethod
    def resolve_resolution(obj: EditConflict) -> str | None:
        return obj.resolution or None


class ConflictFieldOut(Schema):
    field: str
    label: str
    base: Any = Field(..., description="At the version the device started from (null when not known)")
    base_known: bool
    server_copy: Any = Field(..., description="The server's value when the edit arrived")
    server_now: Any = Field(..., description="The server's value now")
    device: Any = Field(..., description="The device's proposed value")
    differs: bool = Field(..., description="Whether the server's value now and the device's differ")


class ConflictDetailOut(ConflictOut):
    fields: list[ConflictFieldOut]


def _user(user: Any) -> dict:
    return {"id": user.pk, "username": user.username, "display_name": user.display_name}


@router.get("/conflicts", response=list[ConflictOut],
            summary="Edit conflicts from the field (編集の競合), newest first (coordinators and supervisors)")
@paginate(Paginated)
def list_conflicts(request: AuthedRequest, filters: Query[ConflictFilter]):
    return conflicts.list_conflicts(request.auth, state=filters.state, household_id=filters.household_id)


@router.get("/conflicts/{conflict_id}", response=ConflictDetailOut,
            summary="Both versions of an edit conflict, field by field (audited)")
def get_conflict(request: AuthedRequest, conflict_id: int):
    conflict = conflicts.get_conflict(request.auth, conflict_id)
    household = conflicts.household_of(request.auth, conflict)
    with_output_attrs(conflict, fields=conflicts.compare(conflict, household))
    if household is not None:
        record_read(request, household, basis=residents_basis(request.auth), detail={"edit_conflict": conflict.pk})
    return conflict


@router.post("/conflicts/{conflict_id}/resolve", response=ConflictOut,
             summary="Resolve an edit conflict: keep the server's, take the device's, or merge (coordinators)")
def resolve_conflict(request: AuthedRequest, conflict_id: int, payload: ConflictResolveIn):
    token = getattr(request, "device_token", None)
    conflicts.resolve_conflict(
        user=request.auth, conflict_id=conflict_id, resolution=payload.resolution,
        household_version=payload.household_version,
        fields=payload.fields.model_dump(exclude_unset=True) if payload.fields else None,
        note=payload.note, device_token_id=token.pk if token else None, ip=client_ip(request),
    )
    return conflicts.get_conflict(request.auth, conflict_id)
