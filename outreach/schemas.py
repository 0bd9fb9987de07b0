import datetime as dt
from typing import Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import ConfigDict

from api.geo import PointIn, PointOut, point_out
from outreach.models import CaseContact, CaseMeeting, Concern, Counter, MeetingRole, OutreachCase


class AttendeeIn(Schema):
    model_config = ConfigDict(extra="forbid")
    role: MeetingRole
    name: str = Field("", max_length=100)


class MeetingConcernIn(Schema):
    model_config = ConfigDict(extra="forbid")
    household_id: UUID | None = None
    resident_id: UUID | None = None
    pin: PointIn | None = None
    place_description: str = Field("", max_length=300)
    categories: list[str] = Field(..., min_length=1)
    urgency: Concern.Urgency = Concern.Urgency.NORMAL
    description: str = Field("", max_length=10_000)


class WatchIn(Schema):
    model_config = ConfigDict(extra="forbid")
    household_id: UUID
    watcher_name: str = Field(..., min_length=1, max_length=100)
    watcher_role: MeetingRole
    cadence_days: int = Field(..., ge=1, le=365)
    started_on: dt.date | None = None
    notes: str = Field("", max_length=2000)


class MeetingIn(Schema):
    model_config = ConfigDict(extra="forbid")
    neighborhood_id: int
    held_on: dt.date
    attendees: list[AttendeeIn] = []
    notes: str = Field("", max_length=20_000)
    concerns: list[MeetingConcernIn] = []
    watches: list[WatchIn] = []


class MeetingOut(Schema):
    id: int
    neighborhood_id: int
    held_on: dt.date
    attendees: list[dict]
    concern_count: int = 0
    watch_count: int = 0


class MeetingDetailOut(MeetingOut):
    notes: str


class WatchOut(Schema):
    id: int
    household_id: UUID
    watcher_name: str
    watcher_role: str
    cadence_days: int
    started_on: dt.date
    ended_on: dt.date | None
    last_check_in: dt.date | None
    next_due: dt.date
    overdue: bool


class CheckInIn(Schema):
    model_config = ConfigDict(extra="forbid")
    checked_on: dt.date
    ok: bool = True
    note: str = Field("", max_length=2000)


class ConcernIn(Schema):
    """A concern in a few fields (a 民生委員 on a phone): a household, or a pin and a description."""

    model_config = ConfigDict(extra="forbid")
    id: UUID | None = Field(None, description="Made by the device when created offline")
    source: Concern.Source = Concern.Source.COMMISSIONER
    source_detail: str = Field("", max_length=100)
    household_id: UUID | None = None
    resident_id: UUID | None = None
    pin: PointIn | None = None
    place_description: str = Field("", max_length=300)
    categories: list[str] = Field(..., min_length=1)
    urgency: Concern.Urgency = Concern.Urgency.NORMAL
    description: str = Field("", max_length=10_000)


class ConcernOut(Schema):
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
    case_id: UUID | None
    reported_by_id: int
    created_at: dt.datetime
    version: int

    @staticmethod
    def resolve_pin(obj) -> dict | None:
        return point_out(obj.pin)


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


class TransitionIn(Schema):
    model_config = ConfigDict(extra="forbid")
    to: Literal["triaged", "watching", "referred", "closed"]
    reason: str = Field(..., min_length=1, max_length=2000)
    referred_to: Counter | None = None


class MatchIn(Schema):
    model_config = ConfigDict(extra="forbid")
    household_id: UUID


class CaseIn(Schema):
    model_config = ConfigDict(extra="forbid")
    household_id: UUID
    resident_id: UUID | None = None
    title: str = Field(..., min_length=1, max_length=200)
    cadence_days: int = Field(14, ge=1, le=365)
    lead_partner_id: int | None = None
    lead_worker_id: int | None = None
    notes: str = Field("", max_length=20_000)
    concern_id: UUID | None = None


class CasePatch(Schema):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(..., ge=1)
    title: str | None = Field(None, min_length=1, max_length=200)
    cadence_days: int | None = Field(None, ge=1, le=365)
    stage: OutreachCase.Stage | None = None
    notes: str | None = Field(None, max_length=20_000)


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
    last_contact_on: dt.date | None
    next_contact_due: dt.date
    overdue: bool
    closed_on: dt.date | None
    closure_reason: str
    version: int


class ContactIn(Schema):
    model_config = ConfigDict(extra="forbid")
    id: UUID | None = None
    kind: CaseContact.Kind
    contacted_on: dt.date
    reached: bool = False
    note: str = Field("", max_length=10_000)


class ContactOut(Schema):
    id: UUID
    kind: str
    contacted_on: dt.date
    reached: bool
    note: str
    by_id: int


class ConsentIn(Schema):
    model_config = ConfigDict(extra="forbid")
    consent_date: dt.date
    scope: str = Field(..., min_length=1, max_length=300)


class CaseMeetingIn(Schema):
    model_config = ConfigDict(extra="forbid")
    kind: CaseMeeting.Kind
    held_on: dt.date
    members: list[dict] = []
    notes: str = Field("", max_length=20_000)
    missing_resources: str = Field("", max_length=5000)
    confidentiality_acknowledged: bool = False


class CaseMeetingOut(Schema):
    id: int
    kind: str
    held_on: dt.date
    members: list[dict]
    notes: str
    missing_resources: str


class PlanIn(Schema):
    model_config = ConfigDict(extra="forbid")
    goals: str = Field(..., min_length=1, max_length=10_000)
    roles: list[dict] = Field(..., min_length=1)
    approved_meeting_id: int | None = None


class PlanOut(Schema):
    id: int
    goals: str
    roles: list[dict]
    approved_at_id: int | None
    created_at: dt.datetime


class CloseIn(Schema):
    model_config = ConfigDict(extra="forbid")
    reason: OutreachCase.ClosureReason
    evaluation: str = Field(..., min_length=1, max_length=10_000)
    closed_on: dt.date | None = None


class CaseDetailOut(CaseOut):
    notes: str
    consent_scope: str
    evaluation: str
    contacts: list[ContactOut]
    meetings: list[CaseMeetingOut]
    plans: list[PlanOut]

    @staticmethod
    def resolve_contacts(obj) -> list:
        return list(obj.contacts.all()[:200])

    @staticmethod
    def resolve_meetings(obj) -> list:
        return list(obj.meetings.all())

    @staticmethod
    def resolve_plans(obj) -> list:
        return list(obj.plans.all())
