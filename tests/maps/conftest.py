"""A town with a surveyed 自治会 for the map tests, built through the real services.

`town.neighborhood` (the worker's corporation's and the commissioner's 自治会) gets 7 more
households: one met, one refused, one leaflet, one absent (tried once), two never visited (one of
them elderly-only and a ゴミ屋敷, with an open concern and an overdue case), one vacant (out of
scope). Next to it, `second` (another corporation's, no commissioner) gets 6 households, none
visited. Coverage of the campaign: first 7 in scope, 3 finished, 1 absent, 3 not visited; second
6 in scope, nothing done."""

import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from maps.services import refresh_coverage
from outreach import services as outreach
from tests import factories
from visits import services as visits
from visits.models import VisitRecord


@dataclass
class MappedTown:
    town: object
    second: object
    households: dict = field(default_factory=dict)  # name -> Household
    second_households: list = field(default_factory=list)
    case: object = None
    watch: object = None
    concern: object = None
    pin_concern: object = None

    def client(self, role):
        return self.town.client(role)


def _at(hood, dx: float, dy: float = 0.0) -> tuple[float, float]:
    x0, y0, _x1, y1 = hood.geom.extent
    return (x0 + dx, (y0 + y1) / 2 + dy)


def build_mapped(town) -> MappedTown:
    hood = town.neighborhood
    x0, y0, x1, _y1 = hood.geom.extent
    second = factories.neighborhood(town.municipality, geom=factories.square(x1, y0, x1 - x0))
    partner2 = factories.partner(town.municipality)
    factories.allocate(second, partner2, town.campaign)
    factories.target(town.campaign, second)
    # The town's household sits at the centre; put the others near the shared edge, 30 m apart.
    m = MappedTown(town=town, second=second)
    names = ("met", "refused", "leaflet", "absent", "new", "hoarding", "vacant")
    for k, name in enumerate(names):
        fields = {}
        if name == "hoarding":
            fields = {"living_arrangement": "elderly_only", "risk_flags": ["hoarding"]}
        if name == "vacant":
            fields = {"status": "vacant"}
        m.households[name] = factories.household(town.municipality, at=_at(hood, (x1 - x0) - 0.0015 - 0.0003 * k), **fields)
    for k in range(6):
        flags = {"risk_flags": ["8050", "hikikomori"]} if k == 0 else {}
        m.second_households.append(factories.household(town.municipality, at=_at(second, 0.0015 + 0.0003 * k), **flags))
    worker = town.users["outreach_worker"]
    start = town.campaign.start_date
    for k, (name, outcome) in enumerate((("met", "met"), ("refused", "refused"), ("leaflet", "leaflet_left"),
                                         ("absent", "absent"))):
        day = start + dt.timedelta(days=1 + 7 * k)
        visit = factories.scheduled_visit(town.campaign, m.households[name], worker, day, route_order=k + 1)
        visits.record_outcome(visit=visit, outcome=outcome)
        if outcome != "absent":
            VisitRecord.objects.create(
                id=uuid.uuid4(), municipality=town.municipality, household=m.households[name], worker=worker,
                scheduled_visit=visit, outcome=outcome,
                visited_at=dt.datetime.combine(day, dt.time(10, 0), tzinfo=timezone.get_current_timezone()),
            )
    today = timezone.localdate()
    coordinator = town.users["coordinator"]
    m.concern = outreach.raise_concern(
        user=town.users["commissioner"], source="commissioner", categories=["hikikomori"],
        household_id=m.households["hoarding"].id,
    )
    from django.contrib.gis.geos import Point

    px, py = _at(second, 0.004, 0.002)
    m.pin_concern = outreach.raise_concern(
        user=coordinator, source="other", categories=["hikikomori"], pin=Point(px, py, srid=4326),
        place_description="公園の近く",
    )
    m.case = outreach.open_case(
        by=coordinator, household_id=m.households["hoarding"].id, title="長期ひきこもり (50代男性)",
        cadence_days=14, opened_on=today - dt.timedelta(days=60), lead_partner=town.partner,
    )
    m.watch = outreach.add_watch(
        user=coordinator, household_id=m.households["met"].id, watcher_name="見守り 太郎", watcher_role="commissioner",
        cadence_days=7, started_on=today - dt.timedelta(days=30),
    )
    outreach.sweep_overdue(today=today)
    factories.resource(town.municipality, at=_at(second, 0.005), name="子ども食堂テスト", type="kodomo_shokudo")
    refresh_coverage(town.campaign.pk)
    return m


@pytest.fixture
def mapped(town) -> MappedTown:
    return build_mapped(town)
