"""The access matrix: every endpoint that takes an object id, with how to name an object of a given
town, and which roles may use it at all. tests/test_access_matrix.py runs each role of one town
against each endpoint with an object of the other town (it must answer 404 and change nothing) and
with an object of its own town (it must work for the allowed roles). Later features add rows."""

from collections.abc import Callable
from dataclasses import dataclass

from accounts.models import DeviceToken
from accounts.roles import Role
from tests.maps.geo import tile_path

ALL_ROLES = frozenset(r.value for r in Role)
MANAGERS = frozenset({Role.COORDINATOR.value, Role.ADMIN.value})
WIDE = frozenset({Role.COORDINATOR.value, Role.SUPERVISOR.value, Role.ADMIN.value})
COORDINATOR = frozenset({Role.COORDINATOR.value})
# who may see a household of their own town's fixture (allocated to the worker's corporation, in
# the commissioner's 自治会); the administrator manages users, not people
HOUSEHOLD_READERS = ALL_ROLES - {Role.ADMIN.value}
PLAN_READERS = frozenset({Role.COORDINATOR.value, Role.SUPERVISOR.value})
# visit records and their photos: the offices and the corporations that visit, not a 民生委員
VISIT_READERS = PLAN_READERS | {Role.OUTREACH_WORKER.value}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable  # (town) -> path under /api/v1/
    roles: frozenset  # roles allowed to use it on their own town's objects
    ok: int = 200
    body: Callable | None = None  # (town) -> JSON body


def _worker_token(town) -> DeviceToken:
    return DeviceToken.objects.filter(user=town.users["outreach_worker"]).order_by("created_at").first()


ENDPOINTS: list[Endpoint] = [
    Endpoint("user detail", "GET", lambda t: f"users/{t.users['coordinator'].id}", WIDE),
    Endpoint("user devices", "GET", lambda t: f"users/{t.users['outreach_worker'].id}/devices", MANAGERS),
    Endpoint(
        "revoke device",
        "DELETE",
        lambda t: f"users/{t.users['outreach_worker'].id}/devices/{_worker_token(t).id}",
        MANAGERS,
        ok=204,
    ),
    Endpoint("neighborhood detail", "GET", lambda t: f"neighborhoods/{t.neighborhood.id}", ALL_ROLES),
    Endpoint("household detail", "GET", lambda t: f"households/{t.household.id}", HOUSEHOLD_READERS),
    Endpoint(
        "household edit", "PATCH", lambda t: f"households/{t.household.id}", COORDINATOR,
        body=lambda t: {"version": t.household.version, "status": "vacant"},
    ),
    Endpoint(
        "resident add", "POST", lambda t: f"households/{t.household.id}/residents", COORDINATOR, ok=201,
        body=lambda t: {"name": "追加 太郎"},
    ),
    Endpoint(
        "resident edit", "PATCH", lambda t: f"residents/{t.resident.id}", COORDINATOR,
        body=lambda t: {"version": t.resident.version, "flags": []},
    ),
    Endpoint("resource detail", "GET", lambda t: f"resources/{t.resource.id}", ALL_ROLES),
    Endpoint("partner detail", "GET", lambda t: f"partners/{t.partner.id}", ALL_ROLES),
    Endpoint(
        "partner schedule", "GET", lambda t: f"partners/{t.partner.id}/schedule?date_from=2026-12-01&date_to=2026-12-31",
        PLAN_READERS | {Role.OUTREACH_WORKER.value},
    ),
    Endpoint(
        "worker schedule", "GET",
        lambda t: f"workers/{t.users['outreach_worker'].id}/schedule?date_from=2026-12-01&date_to=2026-12-31",
        PLAN_READERS | {Role.OUTREACH_WORKER.value},
    ),
    Endpoint(
        "worker days off", "POST", lambda t: f"workers/{t.users['outreach_worker'].id}/days-off",
        COORDINATOR | {Role.OUTREACH_WORKER.value}, body=lambda t: {"dates": ["2026-12-24"]},
    ),
    Endpoint("campaign detail", "GET", lambda t: f"campaigns/{t.campaign.id}", ALL_ROLES),
    Endpoint("campaign progress", "GET", lambda t: f"campaigns/{t.campaign.id}/progress", ALL_ROLES),
    Endpoint(
        "campaign edit", "PATCH", lambda t: f"campaigns/{t.campaign.id}", COORDINATOR,
        body=lambda t: {"max_attempts": 4},
    ),
    Endpoint("campaign allocations", "GET", lambda t: f"campaigns/{t.campaign.id}/allocations", ALL_ROLES),
    Endpoint("hearing detail", "GET", lambda t: f"hearings/{t.hearing.id}", PLAN_READERS),
    Endpoint("planning job", "GET", lambda t: f"planning-jobs/{t.job.id}", PLAN_READERS),
    Endpoint(
        "visit reassign", "POST", lambda t: f"scheduled-visits/{t.visit.id}/reassign", COORDINATOR,
        body=lambda t: {"worker_id": t.users["outreach_worker"].id},
    ),
    Endpoint("photo state", "GET", lambda t: f"sync/photos/{t.with_photo().id}", VISIT_READERS),
    Endpoint(
        "photo image", "GET", lambda t: f"sync/photos/{t.with_photo().id}/image?variant=thumbnail", VISIT_READERS
    ),
    Endpoint("meeting detail", "GET", lambda t: f"meetings/{t.with_outreach().meeting.id}",
             PLAN_READERS | {Role.COMMISSIONER.value}),
    Endpoint("concern detail", "GET", lambda t: f"concerns/{t.with_outreach().concern.id}", HOUSEHOLD_READERS),
    Endpoint(
        "concern transition", "POST", lambda t: f"concerns/{t.with_outreach().concern.id}/transitions", COORDINATOR,
        body=lambda t: {"to": "triaged", "reason": "確認した"},
    ),
    Endpoint(
        "concern match", "POST", lambda t: f"concerns/{t.with_outreach().concern.id}/match", COORDINATOR,
        body=lambda t: {"household_id": str(t.household.id)},
    ),
    Endpoint(
        "watch check-in", "POST", lambda t: f"watches/{t.with_outreach().watch.id}/check-ins",
        COORDINATOR | {Role.COMMISSIONER.value}, ok=201, body=lambda t: {"checked_on": "2026-11-20"},
    ),
    Endpoint("case detail", "GET", lambda t: f"cases/{t.with_outreach().case.id}",
             PLAN_READERS | {Role.OUTREACH_WORKER.value}),
    Endpoint(
        "case edit", "PATCH", lambda t: f"cases/{t.with_outreach().case.id}", COORDINATOR | {Role.OUTREACH_WORKER.value},
        body=lambda t: {"version": t.case.version, "stage": "contact"},
    ),
    Endpoint(
        "case contact", "POST", lambda t: f"cases/{t.with_outreach().case.id}/contacts",
        COORDINATOR | {Role.OUTREACH_WORKER.value}, ok=201,
        body=lambda t: {"kind": "call", "contacted_on": "2026-11-20", "reached": True},
    ),
    Endpoint(
        "case consent", "POST", lambda t: f"cases/{t.with_outreach().case.id}/consent", COORDINATOR,
        body=lambda t: {"consent_date": "2026-11-20", "scope": "重層的支援会議での共有"},
    ),
    Endpoint(
        "case meeting", "POST", lambda t: f"cases/{t.with_outreach().case.id}/meetings", COORDINATOR, ok=201,
        body=lambda t: {"kind": "support", "held_on": "2026-11-20", "confidentiality_acknowledged": True},
    ),
    Endpoint(
        "case close", "POST", lambda t: f"cases/{t.with_outreach().case.id}/close", COORDINATOR,
        body=lambda t: {"reason": "resolved", "evaluation": "主訴解消"},
    ),
    Endpoint("maps coverage", "GET", lambda t: f"maps/coverage?campaign={t.campaign.id}", ALL_ROLES),
    Endpoint("maps coverage of a 自治会", "GET", lambda t: f"maps/coverage?neighborhood={t.neighborhood.id}", ALL_ROLES),
    Endpoint(
        "maps coverage by corporation", "GET", lambda t: f"maps/coverage?group_by=partner&partner={t.partner.id}", ALL_ROLES
    ),
    Endpoint("maps weekly coverage", "GET", lambda t: f"maps/coverage/weekly?campaign={t.campaign.id}", ALL_ROLES),
    Endpoint(
        "maps isolation in a 自治会", "GET", lambda t: f"maps/isolation?neighborhood={t.neighborhood.id}", HOUSEHOLD_READERS
    ),
    Endpoint(
        "maps neighborhoods geojson", "GET", lambda t: f"maps/neighborhoods.geojson?campaign={t.campaign.id}", ALL_ROLES
    ),
    Endpoint(
        "maps neighborhoods tile", "GET",
        lambda t: f"maps/tiles/neighborhoods/{tile_path(t, 13)}.mvt?campaign={t.campaign.id}", ALL_ROLES,
    ),
    Endpoint(
        "maps households tile", "GET",
        lambda t: f"maps/tiles/households/{tile_path(t, 15)}.mvt?campaign={t.campaign.id}", HOUSEHOLD_READERS,
    ),
    Endpoint(
        "visit outcome", "POST", lambda t: f"scheduled-visits/{t.visit.id}/outcome",
        COORDINATOR | {Role.OUTREACH_WORKER.value}, body=lambda t: {"outcome": "met"},
    ),
]


# --- writes that name objects in their body --------------------------------------------------------
# Each row: the body with the town's own objects (it works for `roles`), and variants that swap one
# id for an object of the other town (`foreign(town, other)`): every variant must fail for every
# allowed role (404 or 422, without saying whether the object exists) and change nothing anywhere.

SUPERVISOR = Role.SUPERVISOR.value
RAISERS = frozenset({Role.COORDINATOR.value, Role.OUTREACH_WORKER.value, Role.COMMISSIONER.value})


@dataclass(frozen=True)
class BodyRow:
    name: str
    method: str
    path: Callable  # (town) -> path under /api/v1/
    roles: frozenset
    body: Callable  # (town) -> a body naming the town's own objects
    foreign: dict  # variant name -> (town, other) -> a body naming one object of `other`
    ok: int = 200


def _today() -> str:
    from django.utils import timezone

    return str(timezone.localdate())


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def _concern(t, household=None, resident=None) -> dict:
    body = {"household_id": str((household or t.household).id), "categories": ["isolation"]}
    if resident is not None:
        body["resident_id"] = str(resident.id)
    return body


def _meeting(t, hood=None, concern_household=None, watch_household=None) -> dict:
    return {
        "neighborhood_id": (hood or t.neighborhood).id, "held_on": _today(),
        "concerns": [{"household_id": str((concern_household or t.household).id), "categories": ["isolation"]}],
        "watches": [{"household_id": str((watch_household or t.household).id), "watcher_name": "山根",
                     "watcher_role": "commissioner", "cadence_days": 7}],
    }


def _case(t, **swap) -> dict:
    body = {"household_id": str(t.household.id), "resident_id": str(t.resident.id), "title": "見守りから",
            "lead_partner_id": t.partner.id, "lead_worker_id": t.users["outreach_worker"].id}
    return {**body, **swap}


def _other_case_meeting(o) -> int:
    from outreach import services

    case = o.with_outreach().case
    meeting = services.hold_case_meeting(case=case, kind="support", held_on=case.opened_on, members=[], notes="",
                                         by=o.users["coordinator"], confidentiality_acknowledged=True)
    return meeting.id


def _hearing(t, hood=None, household=None) -> dict:
    return {"neighborhood_id": (hood or t.neighborhood).id, "held_on": _today(),
            "priorities": [{"household_id": str((household or t.household).id)}]}


def _allocation(t, hood=None, partner=None) -> dict:
    return {"allocations": [{"neighborhood_id": (hood or t.neighborhood).id,
                             "partner_organization_id": (partner or t.partner).id}]}


def _centre(t) -> dict:
    from tests import factories

    lon, lat = factories.centre(t.neighborhood)
    return {"type": "Point", "coordinates": [lon, lat]}


def _unplanned_campaign(t):
    """A campaign of the town with its 自治会 allocated and no schedule yet."""
    from tests import factories

    camp = factories.campaign(t.municipality)
    factories.target(camp, t.neighborhood)
    factories.allocate(t.neighborhood, t.partner, camp)
    return camp


BODY_ROWS: list[BodyRow] = [
    BodyRow("raise concern", "POST", lambda t: "concerns", RAISERS, ok=201,
            body=lambda t: _concern(t, resident=t.resident),
            foreign={"household_id": lambda t, o: _concern(t, household=o.household),
                     "resident_id": lambda t, o: _concern(t, resident=o.resident)}),
    BodyRow("record meeting", "POST", lambda t: "meetings", COORDINATOR, ok=201, body=_meeting,
            foreign={"neighborhood_id": lambda t, o: _meeting(t, hood=o.neighborhood),
                     "concerns[].household_id": lambda t, o: _meeting(t, concern_household=o.household),
                     "watches[].household_id": lambda t, o: _meeting(t, watch_household=o.household)}),
    BodyRow("open case", "POST", lambda t: "cases", COORDINATOR, ok=201, body=_case,
            foreign={"household_id": lambda t, o: _case(t, household_id=str(o.household.id), resident_id=None),
                     "resident_id": lambda t, o: _case(t, resident_id=str(o.resident.id)),
                     "lead_partner_id": lambda t, o: _case(t, lead_partner_id=o.partner.id, lead_worker_id=None),
                     "lead_worker_id": lambda t, o: _case(t, lead_worker_id=o.users["outreach_worker"].id),
                     "concern_id": lambda t, o: _case(t, concern_id=str(o.with_outreach().concern.id))}),
    BodyRow("support plan", "POST", lambda t: f"cases/{t.with_outreach().case.id}/plans", COORDINATOR, ok=201,
            body=lambda t: {"goals": "外出の機会", "roles": [{"agency": "社協"}]},
            foreign={"approved_meeting_id": lambda t, o: {"goals": "外出の機会", "roles": [{"agency": "社協"}],
                                                          "approved_meeting_id": _other_case_meeting(o)}}),
    BodyRow("match concern to a household", "POST", lambda t: f"concerns/{t.with_outreach().concern.id}/match",
            COORDINATOR, body=lambda t: {"household_id": str(t.household.id)},
            foreign={"household_id": lambda t, o: {"household_id": str(o.household.id)}}),
    BodyRow("reassign a visit to a worker", "POST", lambda t: f"scheduled-visits/{t.visit.id}/reassign", COORDINATOR,
            body=lambda t: {"worker_id": t.users["outreach_worker"].id},
            foreign={"worker_id": lambda t, o: {"worker_id": o.users["outreach_worker"].id}}),
    BodyRow("reassign a 自治会", "POST",
            lambda t: f"campaigns/{t.campaign.id}/neighborhoods/{t.neighborhood.id}/reassign", COORDINATOR,
            body=lambda t: {"partner_organization_id": t.partner.id},
            foreign={"partner_organization_id": lambda t, o: {"partner_organization_id": o.partner.id},
                     "worker_id": lambda t, o: {"partner_organization_id": t.partner.id,
                                                "worker_id": o.users["outreach_worker"].id}}),
    BodyRow("campaign targets", "PUT", lambda t: f"campaigns/{t.campaign.id}/targets", COORDINATOR,
            body=lambda t: {"neighborhood_ids": [t.neighborhood.id]},
            foreign={"neighborhood_ids[]": lambda t, o: {"neighborhood_ids": [t.neighborhood.id, o.neighborhood.id]}}),
    BodyRow("campaign allocations", "PUT", lambda t: f"campaigns/{t.campaign.id}/allocations", COORDINATOR,
            body=_allocation,
            foreign={"allocations[].neighborhood_id": lambda t, o: _allocation(t, hood=o.neighborhood),
                     "allocations[].partner_organization_id": lambda t, o: _allocation(t, partner=o.partner)}),
    BodyRow("record a hearing", "POST", lambda t: f"campaigns/{t.campaign.id}/hearings", COORDINATOR, ok=201,
            body=_hearing,
            foreign={"neighborhood_id": lambda t, o: _hearing(t, hood=o.neighborhood),
                     "priorities[].household_id": lambda t, o: _hearing(t, household=o.household)}),
    BodyRow("create a household", "POST", lambda t: "households", COORDINATOR, ok=201,
            body=lambda t: {"external_id": f"X-{_uuid()[:8]}", "address": "新町1番地", "location": _centre(t)},
            foreign={"location in the other town": lambda t, o: {"external_id": "X-far", "address": "遠町",
                                                                 "location": _centre(o)}}),
    BodyRow("create a campaign", "POST", lambda t: "campaigns", COORDINATOR, ok=201,
            body=lambda t: {"fiscal_year": t.campaign.fiscal_year, "name": "追加調査",
                            "start_date": str(t.campaign.start_date), "end_date": str(t.campaign.end_date)},
            foreign={}),
    BodyRow("register a sync device", "POST", lambda t: "sync/devices", ALL_ROLES - {SUPERVISOR}, ok=201,
            body=lambda t: {"device_id": _uuid()}, foreign={}),
    BodyRow("publish a survey form", "POST", lambda t: "sync/forms", COORDINATOR, ok=201,
            body=lambda t: {"title": "訪問票", "definition": {"questions": [
                {"id": "talked", "type": "boolean", "label": "話ができた"}]}},
            foreign={}),
]

# Writes with an object in the path that are not in ENDPOINTS above, checked the same way.
ENDPOINTS += [
    Endpoint("worker availability", "PUT", lambda t: f"workers/{t.users['outreach_worker'].id}/availability",
             COORDINATOR, body=lambda t: {"weekdays": [1, 2, 3]}),
    Endpoint("plan a campaign", "POST", lambda t: f"campaigns/{_unplanned_campaign(t).id}/plan", COORDINATOR, ok=202),
    Endpoint("re-plan a campaign", "POST", lambda t: f"campaigns/{t.campaign.id}/replan", COORDINATOR, ok=202),
]

# Write operations with no row above, and where they are covered instead.
NOT_IN_MATRIX = {
    ("POST", "/api/v1/auth/token"): "log in: no object; tests/accounts/test_tokens.py",
    ("DELETE", "/api/v1/auth/token"): "log out this token: no object; tests/accounts/test_tokens.py",
    ("POST", "/api/v1/sync/push"): "per push kind: SYNC_FOREIGN_OPS below; supervisors: tests/visits/test_sync_privacy.py",
    ("POST", "/api/v1/sync/check"): "the caller's own device only (ids are per user): tests/visits/test_sync.py",
    ("PUT", "/api/v1/sync/photos/{photo_id}"):
        "raw bytes and ?visit_id=: tests/visits/test_photos_api.py (other municipality's visit is 422 "
        "visit_unknown) and tests/visits/test_sync_privacy.py (who may attach)",
}


# --- sync push kinds naming another municipality's objects ----------------------------------------
# kind -> variant -> (town, other) -> op (without op_id). Pushed by the coordinator (who may use every
# kind): each must be rejected and change nothing.


def _visit_op(t, **swap) -> dict:
    data = {"id": _uuid(), "household_id": str(t.household.id), "outcome": "met",
            "visited_at": "2026-11-20T10:00:00+09:00", **swap}
    return {"kind": "visit.create", "data": data}


def _foreign_record(o) -> str:
    import uuid

    from django.utils import timezone

    from visits.models import VisitRecord

    return str(VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=o.municipality, household=o.household, worker=o.users["outreach_worker"],
        outcome="met", visited_at=timezone.now(),
    ).id)


SYNC_FOREIGN_OPS: dict[str, dict[str, Callable]] = {
    "visit.create": {
        "household_id": lambda t, o: _visit_op(t, household_id=str(o.household.id)),
        "scheduled_visit_id": lambda t, o: _visit_op(t, scheduled_visit_id=str(o.visit.id)),
        "supersedes": lambda t, o: _visit_op(t, supersedes=_foreign_record(o)),
    },
    "household.update": {
        "id": lambda t, o: {"kind": "household.update", "base_version": o.household.version,
                            "data": {"id": str(o.household.id), "status": "vacant"}},
    },
    "concern.create": {
        "household_id": lambda t, o: {"kind": "concern.create", "data": {"id": _uuid(), **_concern(t, household=o.household)}},
        "resident_id": lambda t, o: {"kind": "concern.create", "data": {"id": _uuid(), **_concern(t, resident=o.resident)}},
        "visit_record_id": lambda t, o: {"kind": "concern.create",
                                         "data": {"id": _uuid(), **_concern(t), "visit_record_id": _foreign_record(o)}},
    },
    "case_contact.create": {
        "case_id": lambda t, o: {"kind": "case_contact.create", "data": {
            "id": _uuid(), "case_id": str(o.with_outreach().case.id), "kind": "call", "contacted_on": _today()}},
    },
    "watch_check_in.create": {
        "watch_id": lambda t, o: {"kind": "watch_check_in.create",
                                  "data": {"watch_id": o.with_outreach().watch.id, "checked_on": _today()}},
    },
}


# --- edit conflicts (編集の競合): coordinators resolve, supervisors read (issue 12) --------------------


def _edit_conflict(t) -> int:
    """An open edit conflict on the town's household, as a worker's stale household.update leaves it
    (made on first use)."""
    import uuid

    from visits.models import Device, EditConflict, SyncOperation
    from visits.sync.engine import household_data

    if getattr(t, "edit_conflict_id", None) is None:
        worker, household = t.users["outreach_worker"], t.household
        device = Device.objects.create(id=uuid.uuid4(), municipality=t.municipality, user=worker, name="iPad")
        op = SyncOperation.objects.create(
            op_id=uuid.uuid4(), municipality=t.municipality, device=device, user=worker, kind="household.update",
            payload_sha256="0" * 64, result={"status": "conflict"},
        )
        t.edit_conflict_id = EditConflict.objects.create(
            municipality=t.municipality, kind="household", object_id=str(household.pk), base_version=household.version,
            server_version=household.version, proposed={"id": str(household.pk), "status": "vacant"},
            server_copy=household_data(household), op=op, user=worker,
        ).pk
    return t.edit_conflict_id


def _household_version(t) -> int:
    from neighborhoods.models import Household

    return Household.objects.get(pk=t.household.pk).version


ENDPOINTS += [
    Endpoint("edit conflict detail", "GET", lambda t: f"conflicts/{_edit_conflict(t)}", PLAN_READERS),
    Endpoint(
        "edit conflict resolve", "POST", lambda t: f"conflicts/{_edit_conflict(t)}/resolve", COORDINATOR,
        body=lambda t: {"resolution": "keep_server", "household_version": _household_version(t)},
    ),
]  # edit conflicts (issue 12)


def _commissioners_check_in(t) -> int:
    from outreach import services

    watch = t.with_outreach().watch
    return services.check_in(watch=watch, checked_on=watch.started_on, ok=True, note="", by=t.users["commissioner"]).pk


def _workers_contact(t) -> str:
    from outreach import services

    case = t.with_outreach().case
    return str(services.log_contact(case=case, by=t.users["outreach_worker"], kind="call",
                                    contacted_on=case.opened_on, reached=True).pk)


ENDPOINTS += [
    Endpoint("watch check-ins", "GET", lambda t: f"watches/{t.with_outreach().watch.id}/check-ins",
             PLAN_READERS | {Role.COMMISSIONER.value}),
    Endpoint(
        "check-in correction", "POST",
        lambda t: f"watches/{t.with_outreach().watch.id}/check-ins/{_commissioners_check_in(t)}/corrections",
        COORDINATOR | {Role.COMMISSIONER.value}, ok=201, body=lambda t: {"retract": True, "reason": "別の世帯の記録"},
    ),
    Endpoint("case contacts", "GET", lambda t: f"cases/{t.with_outreach().case.id}/contacts",
             PLAN_READERS | {Role.OUTREACH_WORKER.value}),
    Endpoint(
        "contact correction", "POST",
        lambda t: f"cases/{t.with_outreach().case.id}/contacts/{_workers_contact(t)}/corrections",
        COORDINATOR | {Role.OUTREACH_WORKER.value}, ok=201,
        body=lambda t: {"kind": "visit", "contacted_on": _today(), "reached": False, "reason": "電話ではなく訪問だった"},
    ),
]  # corrections of check-ins and contacts (issue 12)


def _draft_campaign(t):
    """A campaign of the town in preparation (準備中), with no 自治会 yet."""
    from tests import factories

    return factories.campaign(t.municipality)


ENDPOINTS += [
    Endpoint("start a campaign", "POST", lambda t: f"campaigns/{_draft_campaign(t).id}/activate", COORDINATOR),
    Endpoint("close a campaign", "POST", lambda t: f"campaigns/{_draft_campaign(t).id}/close", COORDINATOR),
]  # campaigns start and close as their own audited steps (issue 12)


ENDPOINTS += [
    Endpoint("per-corporation report", "GET", lambda t: f"reports/corporations?campaign={t.campaign.id}", PLAN_READERS),
]  # the per-corporation report names its campaign in the query (issue 13)


def _export_job(t, **fields) -> str:
    """An export of the town asked for by its coordinator: a job is its requester's alone (the
    supervisor of the same town gets 404 too)."""
    import datetime as dt

    from django.utils import timezone

    from reports.models import ExportJob

    job = ExportJob.objects.create(
        municipality=t.municipality, requested_by=t.users["coordinator"], kind="visits", format="csv",
        encoding="utf-8-sig", params={"fiscal_year": 2025, "campaign": None}, filename="令和7年度_訪問一覧.csv",
        expires_at=timezone.now() + dt.timedelta(hours=1), **fields,
    )
    return str(job.pk)


ENDPOINTS += [
    Endpoint("export job", "GET", lambda t: f"exports/{_export_job(t)}", COORDINATOR),
    # An expired export needs no file: reaching it is 410 Gone for its requester. What the files
    # hold, and a download that works: tests/reports/test_exports.py.
    Endpoint("export file", "GET", lambda t: f"exports/{_export_job(t, status='expired')}/file", COORDINATOR, ok=410),
]  # exports (issue 13)
NOT_IN_MATRIX[("POST", "/api/v1/exports")] = (
    "names a campaign at most: tests/reports/test_exports.py (who may export what, another municipality's "
    "campaign 404); supervisors may export reports (a job of their own, not a change to shared data)"
)


def _unplaced_household(t):
    """A household of the town without a point (its address matched no reference)."""
    from tests import factories

    return factories.household(t.municipality, address="北町9-9")


def _placement_body(t) -> dict:
    from tests import factories

    lon, lat = factories.centre(t.neighborhood)
    return {"lon": lon, "lat": lat, "version": 1}


ENDPOINTS += [
    Endpoint("place a household by hand", "POST", lambda t: f"households/{_unplaced_household(t).id}/placement",
             COORDINATOR, body=_placement_body),
]  # households placed from their address; unmatched ones placed by hand (issue 14, addresses)


def _second_household(t):
    """Another household of the town at the same address as its first (made on first use): the
    other half of a possible duplicate."""
    from tests import factories

    if getattr(t, "second_household", None) is None:
        t.second_household = factories.household(t.municipality, at=factories.centre(t.neighborhood),
                                                 address=t.household.address)
    return t.second_household


ENDPOINTS += [
    Endpoint(
        "merge a household", "POST", lambda t: f"households/{_second_household(t).id}/merge", COORDINATOR,
        body=lambda t: {"into": str(t.household.id), "version": _second_household(t).version,
                        "into_version": _household_version(t)},
    ),
    Endpoint(
        "judge two households distinct", "POST", lambda t: f"households/{t.household.id}/not-duplicate",
        COORDINATOR, ok=204, body=lambda t: {"other": str(_second_household(t).id)},
    ),
]  # possible duplicate households and merging (issue 14); `into`/`other` of another town: tests/neighborhoods/test_duplicates.py


# --- user management (issue 14): managers create, change, deactivate users and issue set-password links;
# the rank (who manages whom) is tested in tests/accounts/test_user_management.py ------------------------
ENDPOINTS += [
    Endpoint("change a user", "PATCH", lambda t: f"users/{t.users['outreach_worker'].id}", MANAGERS,
             body=lambda t: {"display_name": "訪問 一郎"}),
    Endpoint("deactivate a user", "PATCH", lambda t: f"users/{t.users['supervisor'].id}", MANAGERS,
             body=lambda t: {"is_active": False}),
    Endpoint("set-password link", "POST", lambda t: f"users/{t.users['outreach_worker'].id}/set-password-link",
             MANAGERS, ok=201),
]


def _new_user(t, **swap) -> dict:
    body = {"username": f"new-{_uuid()[:8]}", "display_name": "新人", "role": "commissioner",
            "neighborhoods": [t.neighborhood.id]}
    return {**body, **swap}


BODY_ROWS += [
    BodyRow("add a user", "POST", lambda t: "users", MANAGERS, ok=201, body=_new_user,
            foreign={"neighborhoods[]": lambda t, o: _new_user(t, neighborhoods=[t.neighborhood.id, o.neighborhood.id]),
                     "partner_organization": lambda t, o: _new_user(t, role="outreach_worker", neighborhoods=[],
                                                                    partner_organization=o.partner.id)}),
    BodyRow("change a commissioner's 自治会", "PATCH", lambda t: f"users/{t.users['commissioner'].id}", MANAGERS,
            body=lambda t: {"neighborhoods": [t.neighborhood.id]},
            foreign={"neighborhoods[]": lambda t, o: {"neighborhoods": [o.neighborhood.id]}}),
    BodyRow("change a worker's corporation", "PATCH", lambda t: f"users/{t.users['outreach_worker'].id}", MANAGERS,
            body=lambda t: {"partner_organization": t.partner.id},
            foreign={"partner_organization": lambda t, o: {"partner_organization": o.partner.id}}),
]  # user management (issue 14)
