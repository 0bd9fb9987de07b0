import json
from dataclasses import dataclass, field

import psycopg
import pytest
from django.test import Client

from accounts.roles import Role
from tests import factories


class ApiClient:
    """A JSON client for /api/v1 with a device token."""

    def __init__(self, token: str | None = None, **defaults):
        self.client = Client(**defaults)
        self.token = token

    def _headers(self, headers):
        h = dict(headers or {})
        if self.token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        return h

    def request(self, method: str, path: str, data=None, *, headers=None, raw: bytes | None = None,
                content_type: str = "application/json", **extra):
        url = path if path.startswith("/") else f"/api/v1/{path}"
        if raw is not None:
            body = raw
        elif data is not None:
            body = json.dumps(data)
        else:
            body = None
        fn = getattr(self.client, method.lower())
        if method.upper() == "GET":
            return fn(url, data=extra.pop("query", None), headers=self._headers(headers), **extra)
        if body is None:
            return fn(url, content_type=content_type, headers=self._headers(headers), **extra)
        return fn(url, data=body, content_type=content_type, headers=self._headers(headers), **extra)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, data=None, **kw):
        return self.request("POST", path, data, **kw)

    def put(self, path, data=None, **kw):
        return self.request("PUT", path, data, **kw)

    def patch(self, path, data=None, **kw):
        return self.request("PATCH", path, data, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@dataclass
class Town:
    """A municipality with one user per role (and a token each)."""

    municipality: object
    neighborhood: object
    partner: object
    household: object = None
    resident: object = None
    resource: object = None
    campaign: object = None
    hearing: object = None
    visit: object = None
    job: object = None
    visit_record: object = None
    photo: object = None
    concern: object = None
    case: object = None
    meeting: object = None
    watch: object = None
    users: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)

    def client(self, role: str) -> ApiClient:
        return ApiClient(self.tokens[role])

    def with_outreach(self):
        """A 支え愛連絡会 with a concern and a 見守り, and an open case led by the town's corporation
        (made on first use)."""
        if self.concern is None:
            from outreach import services

            coordinator = self.users["coordinator"]
            self.meeting = services.record_meeting(
                user=coordinator, neighborhood=self.neighborhood, held_on=self.campaign.start_date, attendees=[],
                notes="会のメモ", concerns=[], watches=[],
            )
            self.concern = services.raise_concern(
                user=self.users["commissioner"], source="commissioner", household_id=self.household.id,
                categories=["living_alone"], description="最近見かけない",
            )
            self.watch = services.add_watch(
                user=coordinator, household_id=self.household.id, watcher_name="山根", watcher_role="commissioner",
                cadence_days=7, meeting=self.meeting,
            )
            self.case = services.open_case(
                by=coordinator, household_id=self.household.id, title="長期ひきこもり", lead_partner=self.partner,
            )
        return self

    def with_photo(self):
        """A visit record of the town's household with a processed photo (made on first use)."""
        if self.photo is None:
            import uuid

            from django.utils import timezone

            from visits.models import VisitRecord

            self.visit_record = VisitRecord.objects.create(
                id=uuid.uuid4(), municipality=self.municipality, household=self.household,
                worker=self.users["outreach_worker"], outcome="met", visited_at=timezone.now(),
            )
            self.photo = factories.ready_photo(self.visit_record, by=self.users["outreach_worker"])
        return self.photo


def build_town(code: str) -> Town:
    town = factories.municipality(code)
    hood = factories.neighborhood(town)
    partner = factories.partner(town)
    campaign = factories.allocate(hood, partner).campaign
    factories.target(campaign, hood)
    hh = factories.household(town, at=factories.centre(hood), living_arrangement="single_elderly")
    t = Town(
        municipality=town, neighborhood=hood, partner=partner, household=hh,
        resident=factories.resident(hh, birth_year=1940, flags=["care_need"]),
        resource=factories.resource(town, at=factories.centre(hood)),
        campaign=campaign,
    )
    for role in Role:
        u = factories.user(
            town, role, partner_org=partner if role == Role.OUTREACH_WORKER else None,
            neighborhoods=[hood] if role == Role.COMMISSIONER else (),
        )
        t.users[role.value] = u
        t.tokens[role.value] = factories.token_for(u)
    from visits.models import Hearing, PlanningJob

    t.hearing = Hearing.objects.create(
        municipality=town, campaign=campaign, neighborhood=hood, held_on=campaign.start_date, notes="気になる世帯あり"
    )
    import datetime as dt

    from django.utils import timezone

    t.visit = factories.scheduled_visit(
        campaign, hh, t.users["outreach_worker"], timezone.localdate() + dt.timedelta(days=1)
    )
    t.job = PlanningJob.objects.create(municipality=town, campaign=campaign, kind="generate", status="done")
    return t


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """Uploaded files of a test go to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def town(db) -> Town:
    return build_town("910001")


@pytest.fixture
def other_town(db) -> Town:
    return build_town("920002")


@pytest.fixture
def anon(db) -> ApiClient:
    return ApiClient()


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """Every statement sent to the database from here on, counted at the driver (psycopg): the
    tenancy's own statements, which bypass Django's query log, count too."""
    statements: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self, query, params=None, **kwargs):
        statements.append(str(query))
        return original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return statements
