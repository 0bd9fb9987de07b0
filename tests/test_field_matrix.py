"""The field-level visibility matrix: for each role and each read that returns people data, the exact
set of fields it answers with (nested ones as `parent.child` and `list[].child`), or REFUSED, or
EMPTY (a list with nothing the role may see). A field added to an output shows up here as a failure
for every role that would get it, so each new field is a decision about who sees it.

The town has a concern raised by its 民生委員 ("own") and one raised by its coordinator ("other's"),
an open case led by the outreach worker with a contact, a 支援会議 and a plan, an overdue 見守り, a
scheduled visit and a visit photo."""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.utils import timezone

from accounts.roles import Role
from outreach import services as outreach_services
from tests import factories

REFUSED = "refused"  # 403 or 404, with the error body
EMPTY = "empty"  # 200, a list with no items

ROLES = [r.value for r in Role]


# Free-form JSON whose keys are data, not fields (a plan's roles, a meeting's members or attendees).
FREE_FORM = frozenset({"roles", "members", "attendees"})


def paths(value, prefix: str = "") -> frozenset[str]:
    """Every key of a JSON value as a path: `a`, `a.b` for objects, `a[].b` for lists of objects."""
    out: set[str] = set()
    for key, item in value.items():
        out.add(prefix + key)
        if key in FREE_FORM:
            continue
        if isinstance(item, dict):
            out |= paths(item, f"{prefix}{key}.")
        elif isinstance(item, list):
            for element in item:
                if isinstance(element, dict):
                    out |= paths(element, f"{prefix}{key}[].")
    return frozenset(out)


def fields(*names: str, prefix: str = "") -> frozenset[str]:
    return frozenset(prefix + n for n in names)


# --- field sets ----------------------------------------------------------------------------------

POINT = fields("location", "location.type", "location.coordinates")
HOUSEHOLD = POINT | fields(
    "id", "external_id", "address", "address_kana", "match_level", "neighborhood_id", "member_count", "status",
    "living_arrangement", "risk_flags", "merged_into_id", "version", "updated_at",
)
# households without a point, and possible duplicates: the offices' lists (names, no 要配慮 data)
UNPLACED = fields("id", "external_id", "address", "address_normalized", "version")
DUPLICATE_PAIR = fields("first", "second", "address_normalized", "compared", "score", "reason") | fields(
    "id", "external_id", "address", "name", prefix="first."
) | fields("id", "external_id", "address", "name", prefix="second.")
RESIDENT = ("id", "name", "kana", "birth_year", "age_band", "relation", "flags", "version")
HOUSEHOLD_DETAIL = HOUSEHOLD | fields("neighborhood", "neighborhood.id", "neighborhood.name", "residents") | fields(
    *RESIDENT, prefix="residents[]."
)
CONCERN = fields(
    "view", "id", "source", "status", "categories", "urgency", "household_id", "neighborhood_id", "pin",
    "place_description", "referred_to", "case_id", "reported_by_id", "created_at", "version",
)
CONCERN_DETAIL = CONCERN | fields("description", "resident_id", "transitions") | fields(
    "from_status", "to_status", "reason", "by_id", "at", prefix="transitions[]."
)
CONCERN_REPORTER = CONCERN - fields("case_id")
CONCERN_DETAIL_REPORTER = CONCERN_REPORTER | fields("description", "resident_id", "transitions") | fields(
    "from_status", "to_status", "at", prefix="transitions[]."
)
CONCERN_STATUS = fields("view", "id", "status", "neighborhood_id", "created_at", "updated_at")
MEETING = fields("id", "neighborhood_id", "held_on", "attendees", "concern_count", "watch_count")
MEETING_DETAIL = MEETING | fields("notes")
WATCH = ("id", "household_id", "watcher_name", "watcher_role", "cadence_days", "started_on", "ended_on",
         "last_check_in", "next_due", "overdue")
CASE = (
    "id", "household_id", "resident_id", "title", "lead_partner_id", "lead_worker_id", "cadence_days", "stage",
    "consent", "consent_date", "status", "opened_on", "last_contact_on", "next_contact_due", "overdue", "closed_on",
    "closure_reason", "version",
)
CASE_DETAIL = fields(*CASE) | fields("notes", "consent_scope", "evaluation", "contacts", "meetings", "plans") | fields(
    "id", "kind", "contacted_on", "reached", "note", "by_id", prefix="contacts[]."
) | fields("id", "kind", "held_on", "members", "notes", "missing_resources", prefix="meetings[].") | fields(
    "id", "goals", "roles", "approved_at_id", "created_at", prefix="plans[]."
)
OVERDUE_NONE = fields("cases", "watches", "cases_count", "watches_count", "count_capped")
OVERDUE_BOTH = OVERDUE_NONE | fields(*CASE, prefix="cases[].") | fields(*WATCH, prefix="watches[].")
OVERDUE_CASES = OVERDUE_NONE | fields(*CASE, prefix="cases[].")
OVERDUE_WATCHES = OVERDUE_NONE | fields(*WATCH, prefix="watches[].")
SCHEDULED_VISIT = POINT | fields(
    "id", "campaign_id", "household_id", "address", "neighborhood_id", "partner_organization_id", "worker_id",
    "date", "time_band", "route_order", "attempt", "priority", "status", "leg_m", "version",
)
PHOTO = fields(
    "id", "visit_id", "status", "source_format", "size_bytes", "sha256", "width", "height", "error", "created_at",
    "processed_at", "urls", "urls.original", "urls.resized", "urls.thumbnail",
)


# --- endpoints -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    name: str
    path: Callable  # (town) -> path under /api/v1/
    pick: Callable | None = None  # (town, body) -> the object whose fields are checked; None: the body
    listed: bool = False  # a page: every item is checked; none at all is EMPTY


def _item(key: str):
    def pick(town, body):
        wanted = str(getattr(town, key).id)
        found = [item for item in body["items"] if item["id"] == wanted]
        return found[0] if found else EMPTY

    return pick


def _week() -> str:
    today = timezone.localdate()
    return f"date_from={today - dt.timedelta(days=1)}&date_to={today + dt.timedelta(days=7)}"


READS = [
    Read("households", lambda t: "households", pick=_item("household")),
    Read("household detail", lambda t: f"households/{t.household.id}"),
    Read("concerns: own item", lambda t: "concerns", pick=_item("concern")),
    Read("concerns: other's item", lambda t: "concerns", pick=_item("others_concern")),
    Read("concern detail: own", lambda t: f"concerns/{t.concern.id}"),
    Read("concern detail: other's", lambda t: f"concerns/{t.others_concern.id}"),
    Read("meetings", lambda t: "meetings", listed=True),
    Read("meeting detail", lambda t: f"meetings/{t.meeting.id}"),
    Read("watches", lambda t: "watches", listed=True),
    Read("cases", lambda t: "cases", listed=True),
    Read("case detail", lambda t: f"cases/{t.case.id}"),
    Read("overdue", lambda t: "overdue"),
    Read("me/overdue", lambda t: "me/overdue"),
    Read("me/schedule", lambda t: f"me/schedule?{_week()}", listed=True),
    Read("partner schedule", lambda t: f"partners/{t.partner.id}/schedule?{_week()}", listed=True),
    Read("photo state", lambda t: f"sync/photos/{t.photo.id}"),
    Read("households unplaced", lambda t: "households/unplaced", listed=True),
    Read("household duplicates", lambda t: "households/duplicates", listed=True),
]

C, S, W, M, A = "coordinator", "supervisor", "outreach_worker", "commissioner", "admin"

# role → expected, per read. Read it as a table: one row per endpoint, one column per role.
MATRIX: dict[str, dict[str, object]] = {
    "households":              {C: HOUSEHOLD, S: HOUSEHOLD, W: HOUSEHOLD, M: HOUSEHOLD, A: EMPTY},
    "household detail":        {C: HOUSEHOLD_DETAIL, S: HOUSEHOLD_DETAIL, W: HOUSEHOLD_DETAIL, M: HOUSEHOLD_DETAIL,
                                A: REFUSED},
    "concerns: own item":      {C: CONCERN, S: CONCERN, W: CONCERN, M: CONCERN_REPORTER, A: EMPTY},
    "concerns: other's item":  {C: CONCERN, S: CONCERN, W: CONCERN, M: CONCERN_STATUS, A: EMPTY},
    "concern detail: own":     {C: CONCERN_DETAIL, S: CONCERN_DETAIL, W: CONCERN_DETAIL, M: CONCERN_DETAIL_REPORTER,
                                A: REFUSED},
    "concern detail: other's": {C: CONCERN_DETAIL, S: CONCERN_DETAIL, W: CONCERN_DETAIL, M: CONCERN_STATUS,
                                A: REFUSED},
    "meetings":                {C: MEETING, S: MEETING, W: EMPTY, M: MEETING, A: EMPTY},
    "meeting detail":          {C: MEETING_DETAIL, S: MEETING_DETAIL, W: REFUSED, M: MEETING_DETAIL, A: REFUSED},
    "watches":                 {C: fields(*WATCH), S: fields(*WATCH), W: EMPTY, M: fields(*WATCH), A: EMPTY},
    "cases":                   {C: fields(*CASE), S: fields(*CASE), W: fields(*CASE), M: EMPTY, A: EMPTY},
    "case detail":             {C: CASE_DETAIL, S: CASE_DETAIL, W: CASE_DETAIL, M: REFUSED, A: REFUSED},
    "overdue":                 {C: OVERDUE_BOTH, S: OVERDUE_BOTH, W: REFUSED, M: REFUSED, A: REFUSED},
    "me/overdue":              {C: OVERDUE_NONE, S: OVERDUE_NONE, W: OVERDUE_CASES, M: OVERDUE_WATCHES, A: OVERDUE_NONE},
    "me/schedule":             {C: EMPTY, S: EMPTY, W: SCHEDULED_VISIT, M: EMPTY, A: EMPTY},
    "partner schedule":        {C: SCHEDULED_VISIT, S: SCHEDULED_VISIT, W: SCHEDULED_VISIT, M: REFUSED, A: REFUSED},
    "photo state":             {C: PHOTO, S: PHOTO, W: PHOTO, M: REFUSED, A: REFUSED},
    "households unplaced":     {C: UNPLACED, S: UNPLACED, W: REFUSED, M: REFUSED, A: REFUSED},
    "household duplicates":    {C: DUPLICATE_PAIR, S: DUPLICATE_PAIR, W: REFUSED, M: REFUSED, A: REFUSED},
}

# What a device pulls, by kind: the data of each change (the sync has no other field filter).
PULL_HOUSEHOLD = fields(
    "id", "external_id", "address", "address_kana", "location", "location.type", "location.coordinates",
    "neighborhood_id", "status", "living_arrangement", "risk_flags", "version",
)
PULL_SCHEDULED_VISIT = fields(
    "id", "campaign_id", "household_id", "date", "time_band", "route_order", "attempt", "priority", "status", "version"
)
PULL_CONCERN = fields(
    "id", "status", "categories", "urgency", "household_id", "pin", "place_description", "description",
    "referred_to", "created_at", "version",
)
PULL_CASE = fields(
    "id", "title", "household_id", "stage", "cadence_days", "last_contact_on", "next_contact_due", "overdue", "version"
)
PULL_MATRIX: dict[str, object] = {
    C: {"concern": PULL_CONCERN},  # the coordinator's own concern
    S: REFUSED,  # read-only: registers no device
    W: {"household": PULL_HOUSEHOLD, "scheduled_visit": PULL_SCHEDULED_VISIT, "case": PULL_CASE},
    M: {"household": PULL_HOUSEHOLD, "concern": PULL_CONCERN},  # only the concerns they raised
    A: {},
}


def test_every_read_has_a_row_for_every_role():
    assert set(MATRIX) == {r.name for r in READS}
    assert all(set(row) == set(ROLES) for row in MATRIX.values())
    assert set(PULL_MATRIX) == set(ROLES)


@pytest.fixture
def people(town):
    """The town with every kind of people data in it, once per test."""
    town.with_outreach()
    town.with_photo()
    town.others_concern = outreach_services.raise_concern(
        user=town.users["coordinator"], source="counter", household_id=town.household.id,
        resident_id=town.resident.id, categories=["abuse_dv"], description="怒鳴り声", place_description="裏口",
    )
    outreach_services.transition_concern(
        concern=town.others_concern, to="triaged", reason="児相に照会", by=town.users["coordinator"]
    )
    case, coordinator = town.case, town.users["coordinator"]
    case.lead_worker = town.users["outreach_worker"]
    case.save(update_fields=["lead_worker"])
    outreach_services.log_contact(case=case, by=coordinator, kind="call", contacted_on=timezone.localdate(), reached=True,
                                  note="電話で話せた")
    outreach_services.hold_case_meeting(case=case, kind="support", held_on=timezone.localdate(), members=[],
                                        notes="支援会議のメモ", by=coordinator, confidentiality_acknowledged=True)
    outreach_services.add_plan(case=case, goals="外出の機会", roles=[{"agency": "社協"}], by=coordinator)
    factories.household(town.municipality)  # no point: on the unplaced list
    for kana in ("ヤマダ タロウ", "やまだ たろう"):  # one household listed twice
        twice = factories.household(town.municipality, address="北栄町由良宿1-1", at=factories.centre(town.neighborhood))
        type(twice).objects.filter(pk=twice.pk).update(address_normalized="由良宿1-1")
        factories.resident(twice, name="山田 太郎", kana=kana, relation="head")
    yesterday = timezone.localdate() - dt.timedelta(days=1)  # overdue is computed when read
    type(case).objects.filter(pk=case.pk).update(next_contact_due=yesterday)
    type(town.watch).objects.filter(pk=town.watch.pk).update(next_due=yesterday)
    return town


def _observed(town, read: Read, role: str):
    r = town.client(role).get(read.path(town))
    if r.status_code in (403, 404):
        assert r.json()["error"]["code"] in ("forbidden", "not_found"), r.content
        return REFUSED
    assert r.status_code == 200, (read.name, role, r.status_code, r.content)
    body = r.json()
    if read.pick:
        picked = read.pick(town, body)
        return picked if picked == EMPTY else paths(picked)
    if read.listed:
        items = body["items"] if isinstance(body, dict) else body  # pages, or a plain list (schedules)
        if not items:
            return EMPTY
        shapes = {paths(item) for item in items}
        assert len(shapes) == 1, (read.name, role, shapes)
        return shapes.pop()
    return paths(body)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_its_fields(people, role):
    mismatches = {}
    for read in READS:
        expected, observed = MATRIX[read.name][role], _observed(people, read, role)
        if observed != expected:
            if isinstance(expected, frozenset) and isinstance(observed, frozenset):
                mismatches[read.name] = {"unexpected": sorted(observed - expected), "missing": sorted(expected - observed)}
            else:
                mismatches[read.name] = {"expected": sorted(expected) if isinstance(expected, frozenset) else expected,
                                         "observed": sorted(observed) if isinstance(observed, frozenset) else observed}
    assert not mismatches, mismatches


@pytest.mark.parametrize("role", ROLES)
def test_each_role_pulls_exactly_its_fields(people, role):
    client = people.client(role)
    device_id = str(uuid.uuid4())
    registered = client.post("sync/devices", {"device_id": device_id})
    if PULL_MATRIX[role] == REFUSED:
        assert (registered.status_code, registered.json()["error"]["code"]) == (403, "forbidden")
        return
    assert registered.status_code == 201, registered.content
    page = client.get("sync/pull", query={"device_id": device_id, "limit": 500}).json()
    by_kind: dict[str, set] = {}
    for change in page["changes"]:
        if change["kind"] != "form":
            by_kind.setdefault(change["kind"], set()).add(paths(change["data"]))
    assert all(len(shapes) == 1 for shapes in by_kind.values()), by_kind
    assert {kind: shapes.pop() for kind, shapes in by_kind.items()} == PULL_MATRIX[role]


# --- corrections of check-ins and contacts (issue 12): the logs with who corrected what and why ---
CHECK_IN = fields(
    "id", "watch_id", "checked_on", "ok", "note", "recorded_by_id", "created_at", "supersedes", "superseded_by",
    "correction_reason", "retracted",
)
CONTACT_ENTRY = fields(
    "id", "kind", "contacted_on", "reached", "note", "by_id", "created_at", "supersedes", "superseded_by",
    "correction_reason", "retracted",
)


def _check_ins_path(town) -> str:
    """The 見守り's log, with one check-in in it (made on first use)."""
    if not town.watch.check_ins.exists():
        outreach_services.check_in(watch=town.watch, checked_on=timezone.localdate(), ok=True, note="元気そう",
                                   by=town.users["commissioner"])
    return f"watches/{town.watch.id}/check-ins"


READS += [
    Read("watch check-ins", _check_ins_path, listed=True),
    Read("case contacts", lambda t: f"cases/{t.case.id}/contacts", listed=True),
]
MATRIX.update({
    "watch check-ins": {C: CHECK_IN, S: CHECK_IN, W: REFUSED, M: CHECK_IN, A: REFUSED},
    "case contacts":   {C: CONTACT_ENTRY, S: CONTACT_ENTRY, W: CONTACT_ENTRY, M: REFUSED, A: REFUSED},
})
