"""One implementation of each number (issue 13): the campaign progress, the map's coverage (its
snapshot, GeoJSON and tiles) and the 年度 report's coverage per 自治会 are visits.coverage's; the
overdue endpoints list what outreach.overdue reads; both 自治会 GeoJSON endpoints come from one
builder (neighborhoods.queries)."""

import datetime as dt
import json
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.utils import timezone

from maps.services import refresh_coverage
from neighborhoods.models import Household
from neighborhoods.services import update_household
from outreach import services as outreach
from tests import factories
from tests.maps.geo import tiles_covering
from tests.maps.mvt import decode
from visits import services as visits
from visits.coverage import campaign_cells, coverage_pct, coverage_state
from visits.models import Campaign

NUMBERS = ("in_scope", "finished", "coverage_pct", "state")


@dataclass
class Survey:
    town: object
    first: object
    second: object
    empty: object
    campaign: Campaign
    hand_counted: dict = field(default_factory=dict)  # neighborhood id -> NUMBERS


def _inside(hood, k: int) -> tuple[float, float]:
    x0, y0, _x1, _y1 = hood.geom.extent
    return (x0 + 0.001 + 0.0004 * (k % 20), y0 + 0.001 + 0.0004 * (k // 20))


def _visit(campaign, household, worker, day, outcome: str, order: int) -> None:
    visit = factories.scheduled_visit(campaign, household, worker, day, route_order=order)
    visits.record_outcome(visit=visit, outcome=outcome)


@pytest.fixture
def survey(town, other_town) -> Survey:
    """The town's campaign over three 自治会. `first`: the town's household (planned, not visited),
    then one met, one refused, one leaflet left, one moved, one the campaign found vacant (its status
    then set to vacant: still in scope, finished), one absent once, one absent until a leaflet is due,
    one known vacant before (out of scope), one never visited; and a household of another
    municipality inside first's polygon, even one wrongly pointing at first (counted nowhere).
    `second`: 16 households, one met (6.25 %: half up is 6.3). `empty`: no households."""
    muni, campaign, worker = town.municipality, town.campaign, town.users["outreach_worker"]
    first = town.neighborhood
    x0, y0, x1, _y1 = first.geom.extent
    second = factories.neighborhood(muni, geom=factories.square(x1, y0, x1 - x0))
    empty = factories.neighborhood(muni, geom=factories.square(x1 + (x1 - x0), y0, x1 - x0))
    factories.target(campaign, second, empty)
    factories.allocate(second, town.partner, campaign)
    day = campaign.start_date

    households = {}
    for k, name in enumerate(("met", "refused", "leaflet_left", "moved", "found_vacant", "absent", "leaflet_due",
                              "vacant_before", "fresh")):
        households[name] = factories.household(
            muni, at=_inside(first, k), status="vacant" if name == "vacant_before" else "occupied"
        )
    for order, name in enumerate(("met", "refused", "leaflet_left", "moved"), start=1):
        _visit(campaign, households[name], worker, day, name, order)
    _visit(campaign, households["found_vacant"], worker, day, "vacant", 5)
    found = Household.objects.get(pk=households["found_vacant"].pk)
    update_household(household=found, base_version=found.version, changes={"status": "vacant"})
    _visit(campaign, households["absent"], worker, day, "absent", 6)
    for attempt in range(campaign.max_attempts):
        _visit(campaign, households["leaflet_due"], worker, day + dt.timedelta(days=attempt + 1), "absent", 1)

    # The other municipality's 自治会 across the border, west of first; two of its households inside first.
    factories.neighborhood(other_town.municipality, geom=factories.square(x0 - (x1 - x0), y0, x1 - x0))
    stranger = factories.household(other_town.municipality, at=_inside(first, 30))
    misplaced = factories.household(other_town.municipality, at=_inside(first, 31))
    Household.objects.filter(pk=misplaced.pk).update(neighborhood_id=first.pk)  # as a bad import might leave it
    assert Household.objects.get(pk=stranger.pk).neighborhood_id != first.pk

    seconds = [factories.household(muni, at=_inside(second, k)) for k in range(16)]
    _visit(campaign, seconds[0], worker, day, "met", 7)

    s = Survey(town=town, first=first, second=second, empty=empty, campaign=campaign)
    # Counted by hand from the list above.
    s.hand_counted = {
        first.id: {"in_scope": 9, "finished": 5, "coverage_pct": 55.6, "state": "in_progress"},
        second.id: {"in_scope": 16, "finished": 1, "coverage_pct": 6.3, "state": "in_progress"},
        empty.id: {"in_scope": 0, "finished": 0, "coverage_pct": 0.0, "state": "not_started"},
    }
    refresh_coverage(campaign.pk)
    return s


def _numbers(rows, key: str = "neighborhood_id") -> dict:
    return {r[key]: {k: r[k] for k in NUMBERS} for r in rows}


def test_progress_map_geojson_tiles_and_cells_give_the_same_coverage(survey):
    client = survey.town.client("coordinator")
    cid = survey.campaign.id

    progress = client.get(f"campaigns/{cid}/progress").json()
    coverage = client.get(f"maps/coverage?campaign={cid}").json()
    geojson = json.loads(client.get(f"maps/neighborhoods.geojson?campaign={cid}").content)
    cells = campaign_cells(campaign_id=cid, municipality_id=survey.town.municipality.id)
    tile_features = []
    x0, y0, _x1, y1 = survey.first.geom.extent
    _ex0, _ey0, ex1, _ey1 = survey.empty.geom.extent
    for z, x, y in tiles_covering((x0, y0, ex1, y1), 13):
        r = client.get(f"maps/tiles/neighborhoods/{z}/{x}/{y}.mvt?campaign={cid}")
        assert r.status_code == 200, r.content
        decoded = decode(r.content)
        if "neighborhoods" in decoded:
            tile_features.extend(decoded["neighborhoods"].features)

    readings = {
        "progress": _numbers(progress["neighborhoods"]),
        "map coverage": _numbers(coverage["items"], "id"),
        "map GeoJSON": _numbers([f["properties"] for f in geojson["features"] if f["properties"]["targeted"]], "id"),
        "map tiles": _numbers([f.properties for f in tile_features], "id"),
        "campaign_cells": _numbers(cells),
    }
    for name, numbers in readings.items():
        assert numbers == survey.hand_counted, name


def test_every_in_scope_household_is_in_one_bucket(survey):
    cells = campaign_cells(campaign_id=survey.campaign.id, municipality_id=survey.town.municipality.id)
    assert [c["neighborhood_id"] for c in cells] == [survey.first.id, survey.second.id, survey.empty.id]
    first = cells[0]
    assert {k: first[k] for k in ("met", "refused", "leaflet_left", "moved_or_vacant", "absent_pending",
                                  "not_visited", "leaflet_due")} == {
        "met": 1, "refused": 1, "leaflet_left": 1, "moved_or_vacant": 2, "absent_pending": 2, "not_visited": 2,
        "leaflet_due": 1}
    for c in cells:
        assert c["in_scope"] == c["finished"] + c["absent_pending"] + c["not_visited"]
        assert c["partner_organization_id"] == survey.town.partner.id or c["neighborhood_id"] == survey.empty.id
    progress = survey.town.client("supervisor").get(f"campaigns/{survey.campaign.id}/progress").json()
    first_progress = progress["neighborhoods"][0]
    assert first_progress["attempted"] == first_progress["in_scope"] - first_progress["not_visited"] == 7
    partner = {p["partner_organization_id"]: p for p in progress["partners"]}[survey.town.partner.id]
    assert (partner["in_scope"], partner["finished"]) == (25, 6)
    assert partner["coverage_pct"] == coverage_pct(6, 25) == 24.0


def test_a_campaign_of_another_municipality_has_no_cells(survey, other_town):
    assert campaign_cells(campaign_id=survey.campaign.id, municipality_id=other_town.municipality.id) == []
    theirs = campaign_cells(campaign_id=other_town.campaign.id, municipality_id=other_town.municipality.id)
    assert [c["neighborhood_id"] for c in theirs] == [other_town.neighborhood.id]


def test_python_sums_round_and_state_as_the_sql_does(db):
    """coverage_pct / coverage_state (sums made in Python) against the SQL fragments, every pair
    finished <= in_scope <= 120."""
    from visits.coverage import coverage_pct_sql, state_sql

    pct = coverage_pct_sql("f", "s")
    state = state_sql(in_scope="s", finished="f", absent_pending="a")
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT s, f, a, coalesce({pct}, 0)::float8, {state}
              FROM generate_series(0, 120) s, generate_series(0, 120) f, generate_series(0, 1) a
             WHERE f <= s""")  # noqa: S608 - constant fragments
        rows = cursor.fetchall()
    assert len(rows) == 121 * 122 // 2 * 2
    for s, f, a, sql_pct, sql_state in rows:
        assert coverage_pct(f, s) == sql_pct, (f, s)
        assert coverage_state(in_scope=s, finished=f, absent_pending=a) == sql_state, (f, s, a)


# --- overdue ----------------------------------------------------------------------------------------


@pytest.fixture
def overdue(town, other_town):
    """Overdue: a case the town's worker leads, a case only its corporation leads, a 見守り in the
    commissioner's 自治会 and one in a 自治会 without a commissioner. Not overdue: a case due later, a
    closed case, an ended 見守り; another municipality's overdue case."""
    today = timezone.localdate()
    coordinator, worker = town.users["coordinator"], town.users["outreach_worker"]
    muni = town.municipality
    elsewhere = factories.neighborhood(muni)
    far = factories.household(muni, at=factories.centre(elsewhere))
    led = outreach.open_case(by=coordinator, household_id=town.household.id, title="本人主導", lead_worker=worker,
                             cadence_days=14, opened_on=today - dt.timedelta(days=40))
    corporation = outreach.open_case(by=coordinator, household_id=far.id, title="法人のみ", lead_partner=town.partner,
                                     cadence_days=7, opened_on=today - dt.timedelta(days=20))
    outreach.open_case(by=coordinator, household_id=far.id, title="まだ先", lead_worker=worker, cadence_days=30,
                       opened_on=today)
    closed = outreach.open_case(by=coordinator, household_id=far.id, title="終結", cadence_days=7,
                                opened_on=today - dt.timedelta(days=30))
    outreach.close_case(case=closed, by=coordinator, reason="resolved", evaluation="つながった")
    near = outreach.add_watch(user=coordinator, household_id=town.household.id, watcher_name="見守り 一郎",
                              watcher_role="commissioner", cadence_days=7, started_on=today - dt.timedelta(days=30))
    away = outreach.add_watch(user=coordinator, household_id=far.id, watcher_name="見守り 二郎",
                              watcher_role="neighborhood_officer", cadence_days=7,
                              started_on=today - dt.timedelta(days=10))
    ended = outreach.add_watch(user=coordinator, household_id=far.id, watcher_name="見守り 三郎",
                               watcher_role="other", cadence_days=7, started_on=today - dt.timedelta(days=30))
    ended.ended_on = today - dt.timedelta(days=1)
    ended.save(update_fields=["ended_on"])
    outreach.open_case(by=other_town.users["coordinator"], household_id=other_town.household.id, title="他の町",
                       opened_on=today - dt.timedelta(days=60))
    return {"cases": {str(led.id), str(corporation.id)}, "watches": {str(near.id), str(away.id)},
            "led": str(led.id), "near": str(near.id)}


def test_the_overdue_endpoints_list_the_same_items(town, overdue):
    client = town.client("supervisor")
    listed = client.get("overdue").json()
    assert {c["id"] for c in listed["cases"]} == overdue["cases"]
    assert {w["id"] for w in listed["watches"]} == {int(i) for i in overdue["watches"]}
    assert all(item["overdue"] for item in listed["cases"] + listed["watches"])
    assert [c["next_contact_due"] for c in listed["cases"]] == sorted(c["next_contact_due"] for c in listed["cases"])

    mapped = client.get("maps/overdue").json()
    assert mapped["count"] == 4
    assert {(i["kind"], i["id"]) for i in mapped["items"]} == (
        {("case", c["id"]) for c in listed["cases"]} | {("watch", str(w["id"])) for w in listed["watches"]}
    )
    assert [i["due"] for i in mapped["items"]] == sorted(i["due"] for i in mapped["items"])
    paged = [client.get(f"maps/overdue?limit=1&offset={k}").json()["items"][0] for k in range(4)]
    assert paged == mapped["items"]
    beyond = client.get("maps/overdue?limit=1&offset=9").json()
    assert beyond == {"items": [], "count": 4, "count_capped": False}
    cases_only = client.get("maps/overdue?kind=case").json()
    assert {i["id"] for i in cases_only["items"]} == overdue["cases"] and cases_only["count"] == 2
    watches_only = client.get("maps/overdue?kind=watch").json()
    assert {i["id"] for i in watches_only["items"]} == overdue["watches"] and watches_only["count"] == 2


def test_my_overdue_is_the_same_list_narrowed(town, overdue):
    everything = town.client("coordinator").get("overdue").json()
    worker = town.client("outreach_worker").get("me/overdue").json()
    assert [c["id"] for c in worker["cases"]] == [
        c["id"] for c in everything["cases"] if c["lead_worker_id"] == town.users["outreach_worker"].id
    ] == [overdue["led"]]
    assert worker["watches"] == []
    commissioner = town.client("commissioner").get("me/overdue").json()
    assert commissioner["cases"] == []
    assert [str(w["id"]) for w in commissioner["watches"]] == [overdue["near"]]
    mine = {w["id"]: w for w in commissioner["watches"]}
    assert all(mine[w["id"]] == w for w in everything["watches"] if w["id"] in mine)
    for role in ("coordinator", "supervisor", "admin"):
        assert town.client(role).get("me/overdue").json() == {
            "cases": [], "watches": [], "cases_count": 0, "watches_count": 0, "count_capped": False,
        }


def test_overdue_lists_are_bounded_and_counted_to_the_cap(town, overdue, settings):
    """The lists stop at `limit` (the longest overdue first) and the counts at the cap; the map's
    page counts the same way, both kinds together."""
    client = town.client("coordinator")
    full = client.get("overdue").json()
    assert (full["cases_count"], full["watches_count"], full["count_capped"]) == (2, 2, False)
    first = client.get("overdue", query={"limit": 1}).json()
    assert first["cases"] == full["cases"][:1] and first["watches"] == full["watches"][:1]
    assert (first["cases_count"], first["watches_count"]) == (2, 2)
    settings.TSUNAGU_LIST_COUNT_CAP = 1
    capped = client.get("overdue").json()
    assert (capped["cases_count"], capped["watches_count"], capped["count_capped"]) == (1, 1, True)
    assert len(capped["cases"]) == 2, "the cap bounds the count, not the list"
    mapped = client.get("maps/overdue", query={"limit": 1}).json()
    assert (mapped["count"], mapped["count_capped"], len(mapped["items"])) == (1, True, 1)
    settings.TSUNAGU_LIST_COUNT_CAP = 3
    assert (client.get("maps/overdue").json()["count"], client.get("maps/overdue").json()["count_capped"]) == (3, True)
    settings.TSUNAGU_LIST_COUNT_CAP = 4
    assert client.get("maps/overdue").json()["count_capped"] is False


# --- the 自治会 GeoJSON -------------------------------------------------------------------------------


@pytest.mark.parametrize("simplify", ["0", "0.001"])
def test_both_geojson_endpoints_give_the_same_geometry_and_ids(survey, other_town, simplify):
    client = survey.town.client("coordinator")
    places = client.get(f"neighborhoods.geojson?simplify={simplify}")
    mapped = client.get(f"maps/neighborhoods.geojson?simplify={simplify}&campaign={survey.campaign.id}")
    assert places.status_code == mapped.status_code == 200
    assert places["Content-Type"] == mapped["Content-Type"] == "application/geo+json"
    a, b = json.loads(places.content), json.loads(mapped.content)
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]] == [
        survey.first.id, survey.second.id, survey.empty.id]
    assert [f["geometry"] for f in a["features"]] == [f["geometry"] for f in b["features"]]
    for fa, fb in zip(a["features"], b["features"], strict=True):
        assert {k: fa["properties"][k] for k in ("id", "code", "name")} == {
            k: fb["properties"][k] for k in ("id", "code", "name")}
    counts = {f["id"]: f["properties"]["household_count"] for f in a["features"]}
    assert counts == {
        hood.id: Household.objects.filter(municipality=survey.town.municipality, neighborhood=hood).count()
        for hood in (survey.first, survey.second, survey.empty)
    }
    assert counts[survey.empty.id] == 0 and counts[survey.second.id] == 16
    assert list(a["features"][0]["properties"]) == ["id", "code", "name", "kana", "district", "daily_life_area",
                                                    "household_count"]
    assert list(b["features"][0]["properties"]) == [
        "id", "code", "name", "district_id", "daily_life_area_id", "targeted", "in_scope", "met", "refused",
        "leaflet_left", "moved_or_vacant", "absent_pending", "not_visited", "finished", "coverage_pct", "state"]
