"""The largest municipality on one machine (issue 15, point 5): the request paths of
tests/test_query_plans.py (the same list) timed in a town of 100,000 households and in one of
1,800,000 (Yokohama's size), both made by bench/scale_data.py in the one bench database; printed
as the ratio 1.8M / 100k (aim: ≤ 1.2x, a request's cost must not grow with the town). And the
coverage refresh (maps.services.refresh_coverage: aggregate, weekly series, writes) against its
aggregate alone (visits.coverage.CELLS_SQL) in the large town (aim: ≤ 1.5x).

In-process test client with token auth, as each path's role; one warm-up pass (the coverage
snapshot is computed there), then ROUNDS passes alternating the towns request by request; per
request the median. Build once and keep it: `bench/run.py bench_scale --keep-db` (the 1.8M town
takes several minutes to generate). Both towns share the tables, so a Seq Scan would cost the
same in both; tests/test_query_plans.py is what catches those."""

import statistics
import time
import uuid
from dataclasses import dataclass, field

from django.db import connection
from django.test import Client

from backend import tenancy
from bench.common import Figure, best_of
from bench.scale_data import synthetic_town

SCALES = (("100k", "999311", 100_000), ("1.8M", "999312", 1_800_000))
ROUNDS = 5


@dataclass
class Town:
    """What a request path of tests/test_query_plans.py needs of a town (its `fixture.town`)."""

    municipality: object
    campaign: object
    neighborhood: object = None
    partner: object = None
    household: object = None
    concern: object = None
    watch: object = None
    case: object = None
    meeting: object = None
    users: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)


@dataclass
class Fixture:
    town: Town
    device_id: str = ""  # a tablet that pulled everything; `cursor` is its last page's
    cursor: str = ""
    new_device_id: str = ""  # a tablet that never pulled (the first page's)


def _fixture(city: dict) -> Fixture:
    """A worker of the first corporation and objects in its part of the town: a 自治会 allocated to
    it (with its 民生委員), a household there, a case it leads, a concern and a 見守り there."""
    from accounts.models import User
    from accounts.services import issue_device_token
    from neighborhoods.models import Household
    from outreach.models import Concern, Meeting, OutreachCase, WatchArrangement
    from visits.models import Allocation

    town = city["municipality"]
    with tenancy.scope(town.pk):
        allocation = Allocation.objects.filter(campaign=city["campaign"]).select_related(
            "neighborhood", "partner_organization").order_by("neighborhood__code").first()
        assert allocation is not None, "the town has no allocated 自治会"
        hood, partner = allocation.neighborhood, allocation.partner_organization
        f = Town(municipality=town, campaign=city["campaign"], neighborhood=hood, partner=partner)
        f.household = Household.objects.filter(neighborhood=hood).order_by("external_id").first()
        f.case = OutreachCase.objects.filter(lead_partner=partner, household__neighborhood=hood).first() or \
            OutreachCase.objects.filter(lead_partner=partner).first()
        f.concern = Concern.objects.filter(neighborhood=hood).first() or Concern.objects.first()
        f.watch = WatchArrangement.objects.filter(household__neighborhood=hood).first() or WatchArrangement.objects.first()
        f.meeting = Meeting.objects.filter(neighborhood=hood).first()
        chosen = {
            "outreach_worker": User.objects.filter(partner_organization=partner).order_by("pk").first(),
            "commissioner": User.objects.filter(neighborhoods=hood).order_by("pk").first(),
        }
        for role in ("coordinator", "supervisor", "admin"):
            chosen[role] = User.objects.filter(role=role).order_by("pk").first()
        for role, user in chosen.items():
            assert user is not None, f"the town has no {role}"
            f.users[role] = user
            f.tokens[role] = issue_device_token(user=user, device_name="bench-scale")[1]
    return Fixture(town=f)


def _headers(fixture: Fixture, role: str) -> dict:
    return {"Authorization": f"Bearer {fixture.town.tokens[role]}"}


def _pull_to_the_end(client: Client, fixture: Fixture) -> int:
    """A new tablet of the worker pulls everything: the cursor of the empty incremental pull."""
    headers = _headers(fixture, "outreach_worker")
    fixture.device_id = str(uuid.uuid4())
    r = client.post("/api/v1/sync/devices", {"device_id": fixture.device_id}, content_type="application/json",
                    headers=headers)
    assert r.status_code == 201, r.content[:300]
    pages, cursor, more = 0, "", True
    while more:
        query = {"device_id": fixture.device_id, "cursor": cursor, "limit": "500"}
        body = client.get("/api/v1/sync/pull", query, headers=headers).json()
        cursor, more, pages = body["next_cursor"], body["has_more"], pages + 1
    fixture.cursor = cursor
    fixture.new_device_id = str(uuid.uuid4())
    r = client.post("/api/v1/sync/devices", {"device_id": fixture.new_device_id}, content_type="application/json",
                    headers=headers)
    assert r.status_code == 201, r.content[:300]
    return pages


def _request_times(fixtures: dict[str, Fixture]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """Per request path and town: the median time, and the answer's size in bytes (a path whose
    answer grows with the town, a whole-city GeoJSON or a corporation's 60 自治会 against 3, is
    told apart from one whose cost grows while its answer does not)."""
    from tests.test_query_plans import REQUESTS

    client = Client()
    sizes: dict[str, dict[str, int]] = {}

    def get(label: str, request) -> float:
        fixture = fixtures[label]
        started = time.perf_counter()
        r = client.get(f"/api/v1/{request.path(fixture)}", headers=_headers(fixture, request.role))
        took = time.perf_counter() - started
        if r.status_code != 200:
            raise AssertionError(label, request.name, r.status_code, r.content[:300])
        sizes.setdefault(request.name, {})[label] = len(r.content)
        return took

    working = []
    for request in REQUESTS:  # warm-up (the coverage snapshot is made here)
        try:
            for label in fixtures:
                get(label, request)
            working.append(request)
        except AssertionError as failed:
            print(f"  {request.name}: FAILED, left out: {failed}")
    times: dict[str, dict[str, list[float]]] = {r.name: {label: [] for label in fixtures} for r in working}
    for _ in range(ROUNDS):
        for request in working:
            for label in fixtures:
                times[request.name][label].append(get(label, request))
    medians = {name: {label: statistics.median(v) for label, v in by.items()} for name, by in times.items()}
    return medians, sizes


def _municipality_id(fixture: Fixture) -> int:
    return fixture.town.municipality.pk  # type: ignore[attr-defined]


def _wide_reads(label: str, fixture: Fixture) -> None:
    """From the plans the app gets in the large town: each request's Seq Scans and reads of a whole
    municipality of a table that grows with the households (tests/test_query_plans.py's rules)."""
    from tests.test_query_plans import REQUESTS, household_scale_tables, statements_of, wide_scans

    client, grown = Client(), household_scale_tables()
    municipality_id = _municipality_id(fixture)

    def get(f, request):
        return client.get(f"/api/v1/{request.path(f)}", headers=_headers(f, request.role))

    print(f"  [{label}] reads of a whole municipality (plans at this size):")
    for request in REQUESTS:
        try:
            statements = statements_of(get, fixture, request)
        except AssertionError as failed:  # reported, and left out of the times
            print(f"    {request.name}: FAILED {str(failed)[:200]}")
            continue
        found = sorted({
            f"{scan.kind} of {scan.table}"
            for sql in statements
            for scan in wide_scans(sql, municipality_id, seqscan=True)
            if scan.table in grown or scan.kind == "Seq Scan"
        })
        if found:
            print(f"    {request.name}: {'; '.join(found)}")


def _coverage_figure(label: str, city: dict) -> Figure:
    from maps.services import refresh_coverage
    from visits import coverage

    campaign = city["campaign"]
    params = coverage.aggregate_params(campaign_id=campaign.pk, municipality_id=campaign.municipality_id)

    def aggregate():
        with connection.cursor() as cursor:
            cursor.execute(coverage.CELLS_SQL, params)
            cursor.fetchall()

    with tenancy.scope(campaign.municipality_id):
        refresh_coverage(campaign.pk)  # warm: the snapshot exists, as it does after the first refresh
        live = best_of(aggregate, repeat=3)
        refresh = best_of(lambda: refresh_coverage(campaign.pk), repeat=3)
    return Figure(
        f"coverage refresh vs its aggregate alone [{label}]", refresh, live,
        note=f"{city['hoods']:,} 自治会 / {city['households']:,} households",
    )


def run() -> list[Figure]:
    cities, fixtures = {}, {}
    for label, code, households in SCALES:
        started = time.perf_counter()
        cities[label] = synthetic_town(code=code, households=households)
        print(f"  [{label}] {cities[label]['hoods']:,} 自治会, {cities[label]['households']:,} households "
              f"ready in {time.perf_counter() - started:.0f}s")
        fixtures[label] = _fixture(cities[label])
        started = time.perf_counter()
        pages = _pull_to_the_end(Client(), fixtures[label])
        print(f"  [{label}] a worker's full pull: {pages} pages in {time.perf_counter() - started:.1f}s")
    small, large = (label for label, _code, _n in SCALES)
    _wide_reads(large, fixtures[large])
    figures = [_coverage_figure(large, cities[large])]
    medians, sizes = _request_times(fixtures)
    for name, by in medians.items():
        big, little = sizes[name][large], sizes[name][small]
        grew = f"; the answer {big / little:.1f}x as large" if big > 1.2 * little else ""
        figures.append(Figure(f"{name} [{large} vs {small}]", by[large], by[small],
                              note=f"answer {big / 1024:.1f} vs {little / 1024:.1f} KiB{grew}"))
    bounded = [n for n in medians if sizes[n][large] <= 1.2 * sizes[n][small]]
    within = [n for n in bounded if medians[n][large] <= 1.2 * medians[n][small]]
    print(f"  paths within 1.2x: {sum(m[large] <= 1.2 * m[small] for m in medians.values())} of {len(medians)};"
          f" of those whose answer does not grow: {len(within)} of {len(bounded)}")
    return figures
