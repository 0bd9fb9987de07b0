"""Every request path stays index-backed (issue 15, point 5: the largest municipality on one machine).

Each request below runs through the test client as its role; every statement it sends is captured
(CaptureQueriesContext) and EXPLAINed again in the caller's tenant scope (row-level security adds
the policy's ``municipality_id = current_setting(...)`` filter to every plan, as in the request)
with ``SET LOCAL enable_seqscan = off``. On a small fixture the planner would scan anything
sequentially; with sequential scans priced out, a Seq Scan that remains means that no index can
serve the statement, and at 1.8 million households it would read the whole table. Such a scan of a
tenant table fails the test, naming the request, the table and the statement.

Tenant tables are found from the models, not listed by hand: every model with a municipality, and
every model that hangs off one of them by a foreign key (a case's contacts, a device's holdings).
A few small tables without a municipality may be scanned: SCAN_ALLOWED, each with its reason.

What this cannot see on a small fixture: an index scan on the municipality alone reads the whole
town too (under row-level security every tenant table offers one). Which index the planner picks
depends on real statistics, so bench/bench_scale.py runs the same requests in a town of 1.8 million
households and lists, from the plans the app really gets there, each read of a whole municipality
of a table that grows with the households (`wide_scans(..., seqscan=True)`), beside the times."""

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend import tenancy
from tests.maps.geo import tile_path

pytestmark = pytest.mark.django_db

# Small tables without a municipality that a request may read whole.
SCAN_ALLOWED = {
    "neighborhoods_municipality": "one row per municipality, public facts (code, name); read by primary key",
    "django_content_type": "one row per model",
    "spatial_ref_sys": "PostGIS's table of reference systems, read by srid",
}


def tenant_tables() -> frozenset[str]:
    """Tables holding a municipality's data: those with a municipality column, and (transitively)
    those that point at one of them (their rows belong to a tenant row)."""
    models = [m for m in apps.get_models() if not m._meta.proxy]
    tenant = {m for m in models if any(f.name == "municipality" for f in m._meta.fields)}
    while children := {
        m for m in models
        if m not in tenant and any(f.many_to_one and f.related_model in tenant for f in m._meta.fields)
    }:
        tenant |= children
    return frozenset(m._meta.db_table for m in tenant)


def household_scale_tables() -> frozenset[str]:
    """Tables that grow with the households (1.8 million in the largest town): the households and
    everything that hangs off one (residents, visits, concerns, cases, their histories, photos …).
    Reading one of them for the whole municipality is a scan, whichever index it goes through."""
    from neighborhoods.models import Household

    models = [m for m in apps.get_models() if not m._meta.proxy]
    grown = {Household}
    while children := {
        m for m in models
        if m not in grown and any(f.many_to_one and f.related_model in grown and f.name != "merged_into"
                                  for f in m._meta.fields)
    }:
        grown |= children
    return frozenset(m._meta.db_table for m in grown)


@dataclass(frozen=True)
class Path:
    name: str
    role: str
    path: Callable  # (fixture) -> path under /api/v1/


def _tile(layer: str, z: int, campaign: bool = False) -> Callable:
    def path(f):
        query = f"?campaign={f.town.campaign.id}" if campaign else ""
        return f"maps/tiles/{layer}/{tile_path(f.town, z)}.mvt{query}"
    return path


def _view(f) -> str:
    """A map's view around the fixture's 自治会 (its box and about as much again on each side): the
    bbox a map page asks the 自治会 GeoJSON for; as many 自治会 meet it in a town as in a city."""
    x0, y0, x1, y1 = f.town.neighborhood.geom.extent
    dx, dy = x1 - x0, y1 - y0
    return f"{x0 - dx:.6f},{y0 - dy:.6f},{x1 + dx:.6f},{y1 + dy:.6f}"


REQUESTS: list[Path] = [
    Path("me", "coordinator", lambda f: "me"),
    Path("users", "coordinator", lambda f: "users"),
    Path("households list", "coordinator", lambda f: "households"),
    Path("households list (a 自治会)", "coordinator", lambda f: f"households?neighborhood={f.town.neighborhood.id}"),
    Path("households list (bbox)", "coordinator", lambda f: "households?bbox=127.9,35.4,128.5,35.6"),
    Path("households list (status, risk)", "coordinator", lambda f: "households?status=occupied&risk_flag=hikikomori"),
    Path("households list (worker)", "outreach_worker", lambda f: "households"),
    Path("households list (民生委員)", "commissioner", lambda f: "households"),
    Path("household detail", "coordinator", lambda f: f"households/{f.town.household.id}"),
    Path("household detail (worker)", "outreach_worker", lambda f: f"households/{f.town.household.id}"),
    Path("unplaced households", "coordinator", lambda f: "households/unplaced"),
    Path("placement summary", "coordinator", lambda f: "households/placement-summary"),
    Path("possible duplicates", "coordinator", lambda f: "households/duplicates"),
    Path("districts", "coordinator", lambda f: "districts"),
    Path("daily-life areas", "coordinator", lambda f: "daily-life-areas"),
    Path("neighborhoods", "coordinator", lambda f: "neighborhoods"),
    Path("neighborhoods (民生委員)", "commissioner", lambda f: "neighborhoods"),
    Path("neighborhood detail", "coordinator", lambda f: f"neighborhoods/{f.town.neighborhood.id}"),
    Path("neighborhoods geojson", "coordinator", lambda f: "neighborhoods.geojson"),
    Path("neighborhoods geojson (a view)", "coordinator", lambda f: f"neighborhoods.geojson?bbox={_view(f)}"),
    Path("resources", "coordinator", lambda f: "resources"),
    Path("partners", "coordinator", lambda f: "partners"),
    Path("partner workers", "coordinator", lambda f: f"partners/{f.town.partner.id}/workers"),
    Path("campaigns", "coordinator", lambda f: "campaigns"),
    Path("campaign detail", "coordinator", lambda f: f"campaigns/{f.town.campaign.id}"),
    Path("campaign progress", "coordinator", lambda f: f"campaigns/{f.town.campaign.id}/progress"),
    Path("campaign progress (worker)", "outreach_worker", lambda f: f"campaigns/{f.town.campaign.id}/progress"),
    Path("campaign allocations", "coordinator", lambda f: f"campaigns/{f.town.campaign.id}/allocations"),
    Path("campaign hearings", "coordinator", lambda f: f"campaigns/{f.town.campaign.id}/hearings"),
    Path("my schedule", "outreach_worker", lambda f: "me/schedule"),
    Path("worker schedule", "coordinator", lambda f: f"workers/{f.town.users['outreach_worker'].id}/schedule"),
    Path("partner schedule", "coordinator", lambda f: f"partners/{f.town.partner.id}/schedule"),
    Path("concerns", "coordinator", lambda f: "concerns"),
    Path("concerns (民生委員)", "commissioner", lambda f: "concerns"),
    Path("concern detail", "coordinator", lambda f: f"concerns/{f.town.concern.id}"),
    Path("watches", "coordinator", lambda f: "watches?overdue=true"),
    Path("watch check-ins", "coordinator", lambda f: f"watches/{f.town.watch.id}/check-ins"),
    Path("meetings", "coordinator", lambda f: "meetings"),
    Path("meeting detail", "coordinator", lambda f: f"meetings/{f.town.meeting.id}"),
    Path("cases", "coordinator", lambda f: "cases"),
    Path("cases (worker, mine, overdue)", "outreach_worker", lambda f: "cases?mine=true&overdue=true"),
    Path("case detail", "coordinator", lambda f: f"cases/{f.town.case.id}"),
    Path("case contacts", "coordinator", lambda f: f"cases/{f.town.case.id}/contacts"),
    Path("case meetings", "coordinator", lambda f: "case-meetings"),
    Path("overdue", "coordinator", lambda f: "overdue"),
    Path("my overdue", "outreach_worker", lambda f: "me/overdue"),
    Path("coverage per 自治会", "coordinator", lambda f: f"maps/coverage?campaign={f.town.campaign.id}"),
    Path("coverage per corporation", "coordinator", lambda f: f"maps/coverage?campaign={f.town.campaign.id}&group_by=partner"),
    Path("coverage per campaign", "coordinator", lambda f: "maps/coverage?group_by=campaign"),
    Path("coverage weekly", "coordinator", lambda f: f"maps/coverage/weekly?campaign={f.town.campaign.id}"),
    Path("map isolation", "coordinator", lambda f: f"maps/isolation?neighborhood={f.town.neighborhood.id}"),
    Path("map overdue", "coordinator", lambda f: "maps/overdue"),
    Path("map layers", "coordinator", lambda f: "maps/layers"),
    Path("map neighborhoods geojson", "coordinator", lambda f: f"maps/neighborhoods.geojson?campaign={f.town.campaign.id}"),
    Path("map neighborhoods geojson (a view)", "coordinator",
         lambda f: f"maps/neighborhoods.geojson?campaign={f.town.campaign.id}&bbox={_view(f)}"),
    Path("map resources geojson", "coordinator", lambda f: "maps/resources.geojson"),
    Path("tile neighborhoods z13", "coordinator", _tile("neighborhoods", 13, campaign=True)),
    Path("tile households z15", "coordinator", _tile("households", 15, campaign=True)),
    Path("tile households z15 (worker)", "outreach_worker", _tile("households", 15, campaign=True)),
    Path("tile hexagons z13", "admin", _tile("hexagons", 13)),
    Path("tile concerns z13", "coordinator", _tile("concerns", 13)),
    Path("tile cases z13", "coordinator", _tile("cases", 13)),
    Path("tile resources z13", "coordinator", _tile("resources", 13)),
    Path("年度 report", "coordinator", lambda f: f"reports/fiscal-years/{f.town.campaign.fiscal_year}"),
    Path("corporations report", "coordinator", lambda f: f"reports/corporations?campaign={f.town.campaign.id}"),
    # A new tablet's first page, on a tablet of its own: a pull from an empty cursor starts the
    # device over (forgets what it holds), which would undo the incremental pull's tablet.
    Path("sync pull, first page", "outreach_worker", lambda f: f"sync/pull?device_id={f.new_device_id}"),
    Path("sync pull, incremental", "outreach_worker", lambda f: f"sync/pull?device_id={f.device_id}&cursor={f.cursor}"),
    Path("sync forms", "outreach_worker", lambda f: "sync/forms"),
    Path("conflicts", "coordinator", lambda f: "conflicts"),
    Path("audit events", "coordinator", lambda f: "audit/events"),
    Path("exports", "coordinator", lambda f: "exports"),
]


@dataclass
class Fixture:
    town: object
    device_id: str  # a tablet that pulled everything; `cursor` is its last page's
    cursor: str
    new_device_id: str  # a tablet that never pulled


@pytest.fixture
def fixture(town) -> Fixture:
    """The conftest town with its outreach (a concern, a 見守り, a case, a meeting), a visit
    record, a second household and a tablet that has pulled once."""
    from tests import factories
    from visits.models import VisitRecord

    town.with_outreach()
    factories.household(town.municipality, at=factories.centre(town.neighborhood), risk_flags=["hikikomori"])
    VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=town.household,
        worker=town.users["outreach_worker"], outcome="met", visited_at=timezone.now() - dt.timedelta(days=1),
    )
    worker = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert worker.post("sync/devices", {"device_id": device_id}).status_code == 201
    page = worker.get("sync/pull", query={"device_id": device_id}).json()
    while page["has_more"]:
        page = worker.get("sync/pull", query={"device_id": device_id, "cursor": page["next_cursor"]}).json()
    new_device_id = str(uuid.uuid4())
    assert worker.post("sync/devices", {"device_id": new_device_id}).status_code == 201
    return Fixture(town=town, device_id=device_id, cursor=page["next_cursor"], new_device_id=new_device_id)


_EXPLAINABLE = re.compile(r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


# Nodes that read all their input before answering: a Limit above them does not stop the scan.
_CONSUMING = {"Sort", "Incremental Sort", "Aggregate", "Hash", "Materialize", "SetOp", "WindowAgg", "Gather Merge",
              "Gather", "Group", "Memoize", "Recursive Union", "Append", "Merge Append", "CTE Scan"}


@dataclass(frozen=True)
class Scan:
    """A scan of a relation that reads more than a request's rows: `kind` is "Seq Scan", or
    "whole municipality" for an index scan whose only condition is the tenant (or none at all),
    which in the largest municipality reads as much as a Seq Scan of it."""

    table: str
    kind: str


def _tenant_only(condition: str | None) -> bool:
    """An index condition that selects nothing but the municipality (or no condition at all)."""
    if not condition:
        return True
    parts = re.split(r"\s+AND\s+", condition.strip("()"))
    return all("municipality_id" in part for part in parts)


def _index_conditions(plan: dict) -> list[str | None]:
    if plan.get("Node Type") in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        return [plan.get("Index Cond")]
    return [c for child in plan.get("Plans", ()) for c in _index_conditions(child)]


def _scans(plan: dict, *, limited: bool = False) -> list[Scan]:
    """The wide scans of a plan (subplans and CTEs included). An index scan that selects only the
    municipality is fine under a Limit that stops it (a page in index order), not otherwise."""
    node = plan.get("Node Type", "")
    found = []
    if node == "Seq Scan":
        found.append(Scan(plan["Relation Name"], "Seq Scan"))
    elif node in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan") and not limited and all(
        _tenant_only(c) for c in _index_conditions(plan)
    ):
        found.append(Scan(plan["Relation Name"], "whole municipality"))
    limited = node == "Limit" or (limited and node not in _CONSUMING and node != "Bitmap Heap Scan")
    for child in plan.get("Plans", ()):
        found += _scans(child, limited=limited)
    return found


def wide_scans(sql: str, municipality_id: int, *, seqscan: bool = False) -> list[Scan]:
    """The wide scans of `sql` in the tenant scope of `municipality_id`, with sequential scans
    priced out (so only those no index can serve remain), or as planned (`seqscan=True`)."""
    with tenancy.scope(municipality_id), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL enable_seqscan = {'on' if seqscan else 'off'}")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        (document,) = cursor.fetchone()
        transaction.set_rollback(True)  # the setting goes with the savepoint
    document = json.loads(document) if isinstance(document, str) else document
    return _scans(document[0]["Plan"])


def statements_of(get: Callable, fixture, request: Path) -> list[str]:
    """The statements one request sends (`get(fixture, request)` makes it), those EXPLAIN takes."""
    with CaptureQueriesContext(connection) as captured:
        response = get(fixture, request)
    assert response.status_code == 200, f"{request.name}: {response.status_code} {response.content[:300]!r}"
    return [q["sql"] for q in captured.captured_queries if _EXPLAINABLE.match(q["sql"])]


def test_tenant_tables_are_found_from_the_models():
    tables = tenant_tables()
    for table in ("neighborhoods_household", "neighborhoods_resident", "visits_visitrecord", "visits_scheduledvisit",
                  "visits_campaignneighborhood", "visits_deviceholding", "outreach_outreachcase",
                  "outreach_casecontact", "outreach_concern", "accounts_devicetoken", "maps_coveragecell"):
        assert table in tables, table
    assert not tables & set(SCAN_ALLOWED)


def test_the_check_sees_a_wide_scan(fixture):
    """The check itself: a Seq Scan and a filter that only the municipality's index serves are
    reported (live plans: the filter is on a column no index serves, whatever the statistics); a
    lookup by primary key is not (a plan of one, as EXPLAIN writes it: on the small tables of a
    test, which index the planner takes for a key lookup depends on what other tests left)."""
    municipality_id = fixture.town.municipality.id
    household = "neighborhoods_household"
    assert wide_scans("SELECT id FROM neighborhoods_municipality WHERE name = 'x'", municipality_id) == [
        Scan("neighborhoods_municipality", "Seq Scan")
    ]
    assert wide_scans("SELECT id FROM neighborhoods_household WHERE member_count = 97", municipality_id) == [
        Scan(household, "whole municipality")
    ]
    key_lookup = {"Node Type": "Index Scan", "Relation Name": household, "Index Name": "neighborhoods_household_pkey",
                  "Index Cond": "(id = '00000000-0000-4000-8000-000000000000'::uuid)",
                  "Filter": f"(municipality_id = {municipality_id})"}
    assert _scans(key_lookup) == []
    assert _scans({**key_lookup, "Index Name": "household_seq", "Index Cond": f"(municipality_id = {municipality_id})",
                   "Filter": "(id = '00000000-0000-4000-8000-000000000000'::uuid)"}) == [Scan(household, "whole municipality")]


def _get(fixture: Fixture, request: Path):
    return fixture.town.client(request.role).get(request.path(fixture))


def test_every_request_path_is_index_backed(fixture):
    tenant = tenant_tables()
    municipality_id = fixture.town.municipality.id
    failures, statements = [], 0
    for request in REQUESTS:
        for sql in statements_of(_get, fixture, request):
            statements += 1
            for scan in wide_scans(sql, municipality_id):
                if scan.kind == "Seq Scan" and scan.table in tenant:
                    failures.append(f"{request.name}: {scan.kind} of {scan.table}\n    {sql[:300]}")
    assert statements > len(REQUESTS)
    assert not failures, f"{len(failures)} sequential scans of tenant tables:\n" + "\n".join(failures)
