"""The set-based half of the sync push: the visit records of a batch, and the first outcomes they
bring to their scheduled visits, written in a few statements instead of a few per operation.

The push (visits.sync.engine) validates every operation in Python first and hands over only rows
whose effect is certain: a new record of a household the pusher may see, superseding nothing, and
at most one first outcome per scheduled visit that is still planned or handed out (issued). Every
other case (a correction, a visit already recorded or cancelled, a record after a reassignment)
goes through services.record_outcome one operation at a time. When one of these statements fails
(a record id that exists already), the engine undoes the group's savepoint and applies its
operations one by one, so the results are those of the per-operation path.
"""

import datetime as dt
from dataclasses import dataclass, field
from uuid import UUID

import orjson
from django.db import connection
from django.utils import timezone

from visits.models import CampaignHousehold, ScheduledVisit
from visits.services import count_attempt, take_outcome


@dataclass
class VisitRow:
    """One visit record to insert, checked already: the columns of visits_visitrecord."""

    id: UUID
    op_id: str
    household_id: UUID
    scheduled_visit_id: UUID | None
    outcome: str
    met_person: str
    form_id: int | None
    answers: dict
    notes: str
    concerns: list[str]
    visited_at: dt.datetime
    lon: float | None
    lat: float | None
    accuracy_m: float | None
    distance_m: float | None
    implausible: bool


@dataclass
class FirstOutcome:
    """A scheduled visit (locked, still planned or issued) getting its first outcome."""

    visit: ScheduledVisit
    outcome: str


@dataclass
class VisitGroup:
    """What one set-based write holds: the records, and the first outcomes they bring."""

    rows: list[VisitRow] = field(default_factory=list)
    outcomes: list[FirstOutcome] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def visits(self) -> list[ScheduledVisit]:
        """The scheduled visits this group records (a second record of one is applied alone)."""
        return [o.visit for o in self.outcomes]


def insert_visit_records(*, municipality_id: int, worker_id: int, device_id: UUID, rows: list[VisitRow]) -> None:
    """One INSERT … SELECT FROM jsonb_to_recordset for the whole group: the rows travel as one JSON
    parameter (orjson writes the dataclasses, UUIDs and datetimes in C; a list parameter per column
    would be dumped value by value in Python). A record id that exists already (from another
    operation) fails the statement: the caller falls back to one savepoint per op."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO visits_visitrecord (id, municipality_id, household_id, scheduled_visit_id, worker_id,"
            " device_id, op_id, outcome, met_person, form_id, answers, notes, concerns, visited_at, received_at,"
            " location, accuracy_m, distance_m, location_implausible, supersedes_id)"
            " SELECT v.id, %s, v.household_id, v.scheduled_visit_id, %s, %s, v.op_id, v.outcome, v.met_person,"
            " v.form_id, v.answers, v.notes, ARRAY(SELECT jsonb_array_elements_text(v.concerns)), v.visited_at,"
            " now(), CASE WHEN v.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326) END,"
            " v.accuracy_m, v.distance_m, v.implausible, NULL"
            " FROM jsonb_to_recordset(%s::jsonb) AS v(id uuid, op_id uuid, household_id uuid,"
            " scheduled_visit_id uuid, outcome text, met_person text, form_id bigint, answers jsonb, notes text,"
            " concerns jsonb, visited_at timestamptz, lon float8, lat float8, accuracy_m float8, distance_m float8,"
            " implausible boolean)",
            [municipality_id, worker_id, str(device_id), orjson.dumps(rows).decode()],
        )


def record_first_outcomes(outcomes: list[FirstOutcome]) -> None:
    """services.record_outcome's first recording, for many visits at once: the visit becomes done
    (不在: absent) with its outcome and a new version; the household's state in the campaign counts
    the attempt and takes the outcome's state (不在: pending, or チラシ投函予定 once the policy's
    attempts are used). The visits were locked when the group was checked; the campaign states
    are locked here. tests/visits/test_sync_bulk.py compares both paths."""
    if not outcomes:
        return
    now = timezone.now()
    states = _locked_states(outcomes)
    new_states: list[CampaignHousehold] = []
    for item in outcomes:
        visit = item.visit
        key = (visit.campaign_id, visit.household_id)
        state = states.get(key)
        if state is None:
            state = CampaignHousehold(
                municipality_id=visit.municipality_id, campaign_id=visit.campaign_id,
                household_id=visit.household_id, neighborhood_id=visit.neighborhood_id,
            )
            states[key] = state
            new_states.append(state)
        count_attempt(state, visit)
        take_outcome(visit, state, item.outcome)
        visit.version += 1
        visit.updated_at = now
        state.updated_at = now
    ScheduledVisit.objects.bulk_update([o.visit for o in outcomes], ["status", "outcome", "version", "updated_at"])
    existing = [s for s in states.values() if s.pk is not None]
    if existing:
        CampaignHousehold.objects.bulk_update(
            existing, ["state", "attempts", "last_attempt_date", "last_attempt_band", "updated_at"]
        )
    if new_states:
        CampaignHousehold.objects.bulk_create(new_states)


def _locked_states(outcomes: list[FirstOutcome]) -> dict[tuple[int, UUID], CampaignHousehold]:
    campaigns = {o.visit.campaign_id for o in outcomes}
    households = {o.visit.household_id for o in outcomes}
    wanted = {(o.visit.campaign_id, o.visit.household_id) for o in outcomes}
    rows = (
        CampaignHousehold.objects.select_for_update()
        .filter(campaign_id__in=campaigns, household_id__in=households)
        .order_by("pk")
    )
    return {(s.campaign_id, s.household_id): s for s in rows if (s.campaign_id, s.household_id) in wanted}
