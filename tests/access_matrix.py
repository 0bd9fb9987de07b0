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
    Endpoint("photo state", "GET", lambda t: f"sync/photos/{t.with_photo().id}", HOUSEHOLD_READERS),
    Endpoint(
        "photo image", "GET", lambda t: f"sync/photos/{t.with_photo().id}/image?variant=thumbnail", HOUSEHOLD_READERS
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
