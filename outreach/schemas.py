import datetime as dt
import enum
from typing import Annotated, Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import RootModel, model_validator

from api.geo import PointIn, PointOut, point_out
from api.schemas import BodySchema, Id, Unchanged, Version
from backend.dates import FactDate, StartDate
from backend.text import Line, Note
from backend.vocabulary import CONCERN_CATEGORIES
from outreach.models import CaseContact, CaseMeeting, Concern, Counter, MeetingRole, OutreachCase

# The vocabulary as an enum, so that the published schema lists the allowed values.
ConcernCategory = enum.StrEnum("ConcernCategory", {key: key for key in CONCERN_CATEGORIES})  # type: ignore[misc]


class MeetingAttendeeIn(BodySchema):
    role: MeetingRole
    name: Line = Field("", max_length=100)


class MeetingConcernIn(BodySchema):
    household_id: UUID | None = None
    resident_id: UUID | None = None
    pin: PointIn | None = None
    place_description: Line = Field("", max_length=300)
    categories: list[ConcernCategory] = Field(..., min_length=1, max_length=len(CONCERN_CATEGORIES))
    urgency: Concern.Urgency = Concern.Urgency.NORMAL
    description: Note = Field("", max_length=10_000)


class WatchIn(BodySchema):
    household_id: UUID
    watcher_name: Line = Field(..., min_length=1, max_length=100)
    watcher_role: MeetingRole
    cadence_days: int = Field(..., ge=1, le=365)
    started_on: StartDate | None = None
    notes: Note = Field("", max_length=2000)


class MeetingIn(BodySchema):
    neighborhood_id: Id
    held_on: FactDate
    attendees: list[MeetingAttendeeIn] = Field([], max_length=100)
    notes: Note = Field("", max_length=20_000)
    concerns: list[MeetingConcernIn] = Field([], max_length=200)
    watches: list[WatchIn] = Field([], max_length=200)


class MeetingOut(Schema):
    id: int
    neighborhood_id: int
    held_on: dt.date
    attendees: list[dict]
    concern_count: int = 0
    watch_count: int = 0


class MeetingDetailOut(MeetingOut):
    notes: str


OVERDUE_DESCRIPTION = (
    "Computed when read, against today in Asia/Tokyo: a case is overdue when open and its next contact was "
    "due before today; a 見守り when running and its next check-in was due before today."
)


def resolve_overdue(obj) -> bool:
    """The overdue rule of outreach.models, as annotated by `with_overdue()` on every list; a single
    object made by a write is asked of the database with the same rule."""
    value = getattr(obj, "overdue_today", None)
    if value is None:
        value = type(obj).objects.filter(pk=obj.pk).overdue().exists()
    return bool(value)


class WatchOut(Schema):
    id: int
    household_id: UUID
    watcher_name: str
    watcher_role: str
    cadence_days: int
    started_on: dt.date
    ended_on: dt.date | None
    last_check_in: dt.date | None = Field(..., description="The latest check-in that stands (not corrected or retracted)")
    next_due: dt.date
    overdue: bool = Field(..., description=OVERDUE_DESCRIPTION)

    @staticmethod
    def resolve_overdue(obj) -> bool:
        return resolve_overdue(obj)


class CheckInIn(BodySchema):
    checked_on: FactDate
    ok: bool = True
    note: Note = Field("", max_length=2000)


CORRECTION_REASON = Field(..., min_length=1, max_length=2000, description="Why the entry is corrected or retracted")
RETRACT = Field(False, description="true: the corrected entry should not exist (give no corrected fields)")


class CheckInCorrectionIn(BodySchema):
    """The check-in as it should have been (the same rules as a new one), or a retraction."""

    reason: Note = CORRECTION_REASON
    retract: bool = RETRACT
    checked_on: FactDate | None = Field(None, description="Required unless retracting")
    ok: bool = True
    note: Note = Field("", max_length=2000)

    @model_validator(mode="after")
    def _retraction_or_fields(self):
        if self.retract and self.model_fields_set & {"checked_on", "ok", "note"}:
            raise ValueError("A retraction gives only the reason.")
        return self


def _superseded_by(obj):
    later = getattr(obj, "superseded_by", None)
    return later.pk if later is not None else None


class CheckInOut(Schema):
    """A 見守り check-in with its corrections: `supersedes` the entry it corrects, `superseded_by` the
    entry that corrected it; a `retracted` entry says the one it supersedes should not exist. Only
    entries neither superseded nor retractions count for the 見守り's last check-in and due date."""

    id: int
    watch_id: int
    checked_on: dt.date
    ok: bool
    note: str
    recorded_by_id: int
    created_at: dt.datetime
    supersedes: int | None
    superseded_by: int | None
    correction_reason: str
    retracted: bool

    @staticmethod
    def resolve_watch_id(obj) -> int:
        return obj.arrangement_id

    @staticmethod
    def resolve_supersedes(obj) -> int | None:
        return obj.supersedes_id

    @staticmethod
    def resolve_superseded_by(obj) -> int | None:
        return _superseded_by(obj)


class ConcernIn(BodySchema):
    """A concern in a few fields (a 民生委員 on a phone): a household, or a pin and a description."""

    id: UUID | None = Field(None, description="Made by the device when created offline")
    source: Concern.Source = Concern.Source.COMMISSIONER
    source_detail: Line = Field("", max_length=100)
    household_id: UUID | None = None
    resident_id: UUID | None = None
    pin: PointIn | None = None
    place_description: Line = Field("", max_length=300)
    categories: list[ConcernCategory] = Field(..., min_length=1, max_length=len(CONCERN_CATEGORIES))
    urgency: Concern.Urgency = Concern.Urgency.NORMAL
    description: Note = Field("", max_length=10_000)


class ConcernFlagOut(Schema):
    """What was flagged and where it stands: the fields every content view of a concern shares."""

    id: UUID
    source: str
    status: str
    categories: list[str]
    urgency: str
    household_id: UUID | None
    neighborhood_id: int | None
    pin: PointOut | None
    place_description: str
    referred_to: str
    reported_by_id: int
    created_at: dt.datetime
    version: int

    @staticmethod
    def resolve_pin(obj) -> dict | None:
        return point_out(obj.pin)


class ConcernOut(ConcernFlagOut):
    case_id: UUID | None


class TransitionOut(Schema):
    from_status: str
    to_status: str
    reason: str
    by_id: int
    at: dt.datetime


class ConcernDetailOut(ConcernOut):
    description: str | None = Field(None, description="Omitted for readers who may not see the text")
    resident_id: UUID | None
    transitions: list[TransitionOut]

    @staticmethod
    def resolve_transitions(obj) -> list:
        return list(obj.transitions.all())


class TransitionIn(BodySchema):
    to: Literal["triaged", "watching", "referred", "closed"]
    reason: Note = Field(..., min_length=1, max_length=2000)
    referred_to: Counter | None = None


class MatchIn(BodySchema):
    household_id: UUID


class CaseIn(BodySchema):
    household_id: UUID
    resident_id: UUID | None = None
    title: Line = Field(..., min_length=1, max_length=200)
    cadence_days: int = Field(14, ge=1, le=365)
    lead_partner_id: Id | None = None
    lead_worker_id: Id | None = None
    notes: Note = Field("", max_length=20_000)
    concern_id: UUID | None = None


class CasePatch(BodySchema):
    """Absent fields stay as they are; none may be null."""

    version: Version
    title: Line = Unchanged(min_length=1, max_length=200)
    cadence_days: int = Unchanged(ge=1, le=365)
    stage: OutreachCase.Stage = Unchanged()
    notes: Note = Unchanged(max_length=20_000)


class CaseOut(Schema):
    id: UUID
    household_id: UUID
    resident_id: UUID | None
    title: str
    lead_partner_id: int | None
    lead_worker_id: int | None
    cadence_days: int
    stage: str
    consent: str
    consent_date: dt.date | None
    status: str
    opened_on: dt.date
    last_contact_on: dt.date | None = Field(..., description="The latest contact that stands (not corrected or retracted)")
    next_contact_due: dt.date
    overdue: bool = Field(..., description=OVERDUE_DESCRIPTION)
    closed_on: dt.date | None
    closure_reason: str
    version: int

    @staticmethod
    def resolve_overdue(obj) -> bool:
        return resolve_overdue(obj)


class ContactIn(BodySchema):
    id: UUID | None = None
    kind: CaseContact.Kind
    contacted_on: FactDate
    reached: bool = False
    note: Note = Field("", max_length=10_000)


class ContactOut(Schema):
    id: UUID
    kind: str
    contacted_on: dt.date
    reached: bool
    note: str
    by_id: int


class ContactCorrectionIn(BodySchema):
    """The contact as it should have been (the same rules as a new one), or a retraction."""

    id: UUID | None = Field(None, description="The correction's id, made by the device")
    reason: Note = CORRECTION_REASON
    retract: bool = RETRACT
    kind: CaseContact.Kind | None = Field(None, description="Required unless retracting")
    contacted_on: FactDate | None = Field(None, description="Required unless retracting")
    reached: bool = False
    note: Note = Field("", max_length=10_000)

    @model_validator(mode="after")
    def _retraction_or_fields(self):
        if self.retract and self.model_fields_set & {"kind", "contacted_on", "reached", "note"}:
            raise ValueError("A retraction gives only the reason.")
        return self


class ContactEntryOut(ContactOut):
    """A case contact with its corrections (as CheckInOut): only entries neither superseded nor
    retractions count for the case's last contact and due date."""

    created_at: dt.datetime
    supersedes: UUID | None
    superseded_by: UUID | None
    correction_reason: str
    retracted: bool

    @staticmethod
    def resolve_supersedes(obj) -> UUID | None:
        return obj.supersedes_id

    @staticmethod
    def resolve_superseded_by(obj) -> UUID | None:
        return _superseded_by(obj)


class ConsentIn(BodySchema):
    consent_date: FactDate
    scope: Line = Field(..., min_length=1, max_length=300)


class CaseMeetingIn(BodySchema):
    kind: CaseMeeting.Kind
    held_on: FactDate
    members: list[dict] = Field([], max_length=50, description='e.g. [{"agency": "地域包括支援センター"}]')
    notes: Note = Field("", max_length=20_000)
    missing_resources: Note = Field("", max_length=5000)
    confidentiality_acknowledged: bool = False


class CaseMeetingOut(Schema):
    id: int
    kind: str
    held_on: dt.date
    members: list[dict]
    notes: str
    missing_resources: str


class SupportPlanIn(BodySchema):
    goals: Note = Field(..., min_length=1, max_length=10_000)
    roles: list[dict] = Field(..., min_length=1, max_length=50)
    approved_meeting_id: Id | None = None


class SupportPlanOut(Schema):
    id: int
    goals: str
    roles: list[dict]
    approved_at_id: int | None
    created_at: dt.datetime


class CloseIn(BodySchema):
    reason: OutreachCase.ClosureReason
    evaluation: Note = Field(..., min_length=1, max_length=10_000)
    closed_on: FactDate | None = Field(None, description="Default: today")


class CaseDetailOut(CaseOut):
    notes: str
    consent_scope: str
    evaluation: str
    contacts: list[ContactOut] = Field(
        ..., description="The contacts that stand (the latest 200); the log with its corrections: GET /cases/{id}/contacts"
    )
    meetings: list[CaseMeetingOut]
    plans: list[SupportPlanOut]

    @staticmethod
    def resolve_contacts(obj) -> list:
        return list(obj.contacts.all().effective()[:200])

    @staticmethod
    def resolve_meetings(obj) -> list:
        return list(obj.meetings.all())

    @staticmethod
    def resolve_plans(obj) -> list:
        return list(obj.plans.all())


# --- what a role sees of a concern: outreach.access.concern_view decides, per concern -------------
# Each output carries its view as a discriminator, so a list can mix the two and the published
# schema says exactly which fields each kind of item has.


class ConcernFullOut(ConcernOut):
    view: Literal["full"] = Field("full", description="The whole concern (its reporter and those who work on it)")


class ConcernDetailFullOut(ConcernDetailOut):
    view: Literal["full"] = Field("full", description="The whole concern (its reporter and those who work on it)")


class ConcernStatusOut(Schema):
    """Status, not content: what a 民生委員 sees of a concern someone else raised in their 自治会."""

    view: Literal["status"] = "status"
    id: UUID
    status: str
    neighborhood_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ConcernStatusStepOut(Schema):
    """A step of a concern's history as its reporter sees it: where it went and when, not who or why."""

    from_status: str
    to_status: str
    at: dt.datetime


class ConcernReporterOut(ConcernFlagOut):
    """A 民生委員's own flag: what they raised and where it stands (no case, no coordinator's notes)."""

    view: Literal["reporter"] = Field("reporter", description="The reporter's own flag")


class ConcernDetailReporterOut(ConcernReporterOut):
    description: str
    resident_id: UUID | None
    transitions: list[ConcernStatusStepOut]

    @staticmethod
    def resolve_transitions(obj) -> list:
        return list(obj.transitions.all())


class ConcernListItemOut(
    RootModel[Annotated[ConcernFullOut | ConcernReporterOut | ConcernStatusOut, Field(discriminator="view")]]
):
    """One concern of a list, in the view its reader gets (a named type: the page schema is named after it)."""
ConcernDetailAnyOut = Annotated[
    ConcernDetailFullOut | ConcernDetailReporterOut | ConcernStatusOut, Field(discriminator="view")
]
