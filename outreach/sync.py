"""Concerns, case contacts and 見守り check-ins made offline join the field sync (visits.sync.engine):
push kinds `concern.create`, `case_contact.create`, `watch_check_in.create`; pull kinds `concern`
(the concerns the user raised, with their status) and `case` (the cases a worker leads).

A contact or check-in pushed with `supersedes` (the id of an earlier entry) and `correction_reason`
corrects that entry (or retracts it, with `retract: true`) through the same service as the API's
corrections; refused as `already_corrected`, `forbidden`, `contact_unknown` / `check_in_unknown`.
A case's `overdue` is computed when the case is pulled; a tablet compares `next_contact_due` with
its own date between pulls."""

from uuid import UUID

from django.contrib.gis.geos import Point
from pydantic import Field

from accounts.access import municipality_id_of
from accounts.models import User
from accounts.roles import Role
from api.geo import SyncPointIn, point_out
from api.schemas import PayloadModel
from backend.dates import FactDate
from backend.errors import TsunaguError
from backend.text import Line, Note
from outreach import access, services
from outreach.models import CaseContact, Concern, OutreachCase
from visits.sync import engine as sync

PinIn = SyncPointIn  # a GeoJSON Point, or the deprecated {lon, lat} (api.geo)


class ConcernCreate(PayloadModel):
    id: UUID
    source: Concern.Source = Concern.Source.COMMISSIONER
    household_id: UUID | None = None
    resident_id: UUID | None = None
    pin: PinIn | None = None
    place_description: Line = Field("", max_length=300)
    categories: list[Line] = Field(..., min_length=1, max_length=20)
    urgency: Concern.Urgency = Concern.Urgency.NORMAL
    description: Note = Field("", max_length=10_000)
    visit_record_id: UUID | None = None


class ContactCreate(PayloadModel):
    id: UUID
    case_id: UUID
    kind: CaseContact.Kind
    contacted_on: FactDate
    reached: bool = False
    note: Note = Field("", max_length=10_000)
    supersedes: UUID | None = None
    correction_reason: Note = Field("", max_length=2000)
    retract: bool = False


class CheckInCreate(PayloadModel):
    watch_id: int = Field(..., ge=1, le=2**63 - 1)
    checked_on: FactDate
    ok: bool = True
    note: Note = Field("", max_length=2000)
    supersedes: int | None = Field(None, ge=1, le=2**63 - 1)
    correction_reason: Note = Field("", max_length=2000)
    retract: bool = False


def _domain(call):
    try:
        return call()
    except TsunaguError as exc:
        raise sync.Rejected(exc.code, exc.message, exc.details) from exc


def apply_concern_create(*, user: User, device, op: dict, context) -> dict:
    data: ConcernCreate = sync._parse(ConcernCreate, op.get("data"))
    if not access.may_raise_concern(user):
        raise sync.Rejected("forbidden", "Supervisors and administrators do not raise concerns.")
    concern = _domain(lambda: services.raise_concern(
        user=user, concern_id=data.id, source=data.source, household_id=data.household_id, resident_id=data.resident_id,
        pin=Point(data.pin.lon, data.pin.lat, srid=4326) if data.pin else None,
        place_description=data.place_description, categories=data.categories, urgency=data.urgency,
        description=data.description, visit_record_id=data.visit_record_id,
    ))
    return {"status": "applied", "id": str(concern.pk), "version": concern.version}


def apply_contact_create(*, user: User, device, op: dict, context) -> dict:
    data: ContactCreate = sync._parse(ContactCreate, op.get("data"))
    case = access.visible_cases(user).filter(pk=data.case_id).first()
    if case is None or not access.may_write_case(user, case):
        raise sync.Rejected("not_assigned", "This case is not one you work on.")
    contact = _domain(lambda: services.log_contact(
        case=case, by=user, kind=data.kind, contacted_on=data.contacted_on, reached=data.reached, note=data.note,
        contact_id=data.id, supersedes_id=data.supersedes, correction_reason=data.correction_reason, retract=data.retract,
    ))
    return {"status": "applied", "id": str(contact.pk), "version": 1}


def apply_check_in_create(*, user: User, device, op: dict, context) -> dict:
    data: CheckInCreate = sync._parse(CheckInCreate, op.get("data"))
    watch = access.visible_watches(user).filter(pk=data.watch_id).first()
    if watch is None or not access.may_check_in(user, watch):
        raise sync.Rejected("not_assigned", "This 見守り is not one you may record.")
    entry = _domain(lambda: services.check_in(
        watch=watch, checked_on=data.checked_on, ok=data.ok, note=data.note, by=user, supersedes_id=data.supersedes,
        correction_reason=data.correction_reason, retract=data.retract,
    ))
    return {"status": "applied", "id": str(entry.pk), "version": 1}


def visible(user: User) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    concerns = Concern.objects.filter(municipality_id=municipality_id_of(user), reported_by=user).exclude(status="closed")
    for cid, seq in concerns.values_list("pk", "change_seq"):
        out[("concern", str(cid))] = seq
    if user.role == Role.OUTREACH_WORKER:
        cases = OutreachCase.objects.filter(municipality_id=municipality_id_of(user), lead_worker=user, status="open")
        for cid, seq in cases.values_list("pk", "change_seq"):
            out[("case", str(cid))] = seq
    return out


def serialize_concerns(ids: list[str]) -> dict[str, dict]:
    return {
        str(c.pk): {"version": c.version, "data": {
            "id": str(c.pk), "status": c.status, "categories": c.categories, "urgency": c.urgency,
            "household_id": str(c.household_id) if c.household_id else None, "pin": point_out(c.pin),
            "place_description": c.place_description, "description": c.description, "referred_to": c.referred_to,
            "created_at": c.created_at.isoformat(), "version": c.version,
        }}
        for c in Concern.objects.filter(pk__in=ids)
    }


def serialize_cases(ids: list[str]) -> dict[str, dict]:
    """What a worker's tablet needs to plan the next contact; the notes stay online (audited)."""
    return {
        str(c.pk): {"version": c.version, "data": {
            "id": str(c.pk), "title": c.title, "household_id": str(c.household_id), "stage": c.stage,
            "cadence_days": c.cadence_days, "last_contact_on": c.last_contact_on.isoformat() if c.last_contact_on else None,
            "next_contact_due": c.next_contact_due.isoformat(), "overdue": c.overdue_today, "version": c.version,
        }}
        for c in OutreachCase.objects.filter(pk__in=ids).with_overdue()
    }


def register() -> None:
    sync.APPLIERS.update({
        "concern.create": apply_concern_create,
        "case_contact.create": apply_contact_create,
        "watch_check_in.create": apply_check_in_create,
    })
    if visible not in sync.VISIBLE_PROVIDERS:
        sync.VISIBLE_PROVIDERS.append(visible)
    sync.SERIALIZERS.update({"concern": serialize_concerns, "case": serialize_cases})
    for kind in ("concern", "case"):
        if kind not in sync.KINDS:
            sync.KINDS.append(kind)
