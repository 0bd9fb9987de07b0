"""Coverage per 自治会, area, district, corporation and campaign; the weekly series; the snapshot and
its refresh; the overdue list."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from maps.models import CoverageCell, CoverageRefresh
from maps.services import refresh_coverage, refresh_due_coverage
from tests import factories
from tests.access_matrix import ALL_ROLES
from tests.api.test_errors import assert_error_body
from visits import services as visits

FIRST = {"in_scope": 7, "met": 1, "refused": 1, "leaflet_left": 1, "moved_or_vacant": 0, "absent_pending": 1,
         "not_visited": 3, "finished": 3, "coverage_pct": 42.9, "state": "in_progress"}
SECOND = {"in_scope": 6, "met": 0, "refused": 0, "leaflet_left": 0, "moved_or_vacant": 0, "absent_pending": 0,
          "not_visited": 6, "finished": 0, "coverage_pct": 0.0, "state": "not_started"}


def _numbers(item: dict) -> dict:
    return {k: item[k] for k in FIRST}


def test_coverage_per_neighborhood(mapped):
    r = mapped.client("supervisor").get(f"maps/coverage?campaign={mapped.town.campaign.id}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["campaign"]["id"] == mapped.town.campaign.id
    assert body["group_by"] == "neighborhood" and body["count"] == 2
    by_id = {item["id"]: item for item in body["items"]}
    assert _numbers(by_id[mapped.town.neighborhood.id]) == FIRST
    assert _numbers(by_id[mapped.second.id]) == SECOND
    assert by_id[mapped.town.neighborhood.id]["partner_organization_id"] == mapped.town.partner.id
    assert body["totals"]["in_scope"] == 13 and body["totals"]["finished"] == 3
    assert body["totals"]["coverage_pct"] == 23.1
    assert body["totals"]["neighborhoods"] == {"total": 2, "complete": 0, "in_progress": 1, "not_started": 1}
    assert body["snapshot"]["stale"] is False and body["snapshot"]["refreshed_at"]
    for item in body["items"]:  # every household in scope is in exactly one bucket
        assert item["in_scope"] == item["finished"] + item["absent_pending"] + item["not_visited"]


def test_the_current_campaign_is_the_default(mapped):
    body = mapped.client("coordinator").get("maps/coverage").json()
    assert body["campaign"]["id"] == mapped.town.campaign.id and body["count"] == 2


@pytest.mark.parametrize("group_by", ["daily_life_area", "district", "partner", "campaign"])
def test_coverage_rolls_up(mapped, group_by):
    body = mapped.client("coordinator").get(f"maps/coverage?group_by={group_by}").json()
    assert body["group_by"] == group_by
    assert sum(item["in_scope"] for item in body["items"]) == 13
    assert sum(item["finished"] for item in body["items"]) == 3
    if group_by == "partner":
        by_id = {item["id"]: item for item in body["items"]}
        assert _numbers(by_id[mapped.town.partner.id]) == FIRST
        assert by_id[mapped.town.partner.id]["neighborhoods"]["in_progress"] == 1
    if group_by == "campaign":
        assert [item["id"] for item in body["items"]] == [mapped.town.campaign.id]
        assert body["items"][0]["campaign_status"] == "running"
    if group_by in ("district", "daily_life_area"):  # the test 自治会 have none
        assert [item["name"] for item in body["items"]] == ["未設定"]


def test_filters_narrow_the_groups(mapped):
    client = mapped.client("coordinator")
    body = client.get(f"maps/coverage?partner={mapped.town.partner.id}").json()
    assert [item["id"] for item in body["items"]] == [mapped.town.neighborhood.id]
    body = client.get(f"maps/coverage?neighborhood={mapped.second.id}&group_by=campaign").json()
    assert _numbers(body["items"][0]) == SECOND


def test_coverage_is_paginated_with_totals_on_every_page(mapped):
    client = mapped.client("coordinator")
    first = client.get("maps/coverage?limit=1").json()
    second = client.get("maps/coverage?limit=1&offset=1").json()
    past = client.get("maps/coverage?limit=1&offset=5").json()
    assert first["count"] == second["count"] == past["count"] == 2
    assert [len(first["items"]), len(second["items"]), len(past["items"])] == [1, 1, 0]
    assert first["items"][0]["id"] != second["items"][0]["id"]
    assert first["totals"] == second["totals"] == past["totals"]


def test_weekly_series_is_cumulative(mapped):
    campaign = mapped.town.campaign
    body = mapped.client("supervisor").get(f"maps/coverage/weekly?neighborhood={mapped.town.neighborhood.id}").json()
    assert body["in_scope"] == 7
    weeks = {item["week_start"]: item for item in body["items"]}
    start_week = campaign.start_date - dt.timedelta(days=campaign.start_date.weekday())
    assert body["items"][0]["week_start"] == start_week.isoformat()
    finished = [item["finished"] for item in body["items"]]
    assert sum(finished) == 3
    cumulative = [item["cumulative"] for item in body["items"]]
    assert cumulative == sorted(cumulative) and cumulative[-1] == 3
    # met on start+1, refused on start+8, leaflet on start+15: one per week (the visit records' days)
    for k in range(3):
        day = campaign.start_date + dt.timedelta(days=1 + 7 * k)
        week = (day - dt.timedelta(days=day.weekday())).isoformat()
        assert weeks[week]["finished"] >= 1
    assert body["items"][-1]["coverage_pct"] == 42.9
    iso = dt.date.fromisoformat(body["items"][0]["week_start"]).isocalendar()
    assert body["items"][0]["week"] == f"{iso.year}-W{iso.week:02d}"


def test_a_new_outcome_shows_after_the_read_triggered_refresh(mapped):
    """Tests run tasks inline: the read that finds the sources changed refreshes first."""
    town = mapped.town
    visit = factories.scheduled_visit(town.campaign, mapped.households["new"], town.users["outreach_worker"],
                                      town.campaign.start_date + dt.timedelta(days=30))
    visits.record_outcome(visit=visit, outcome="met")
    body = town.client("coordinator").get(f"maps/coverage?neighborhood={town.neighborhood.id}").json()
    assert body["items"][0]["met"] == 2 and body["items"][0]["not_visited"] == 2
    assert body["snapshot"]["stale"] is False


def test_an_unchanged_snapshot_is_not_recomputed(mapped):
    before = CoverageRefresh.objects.get(campaign=mapped.town.campaign).refreshed_at
    mapped.client("coordinator").get("maps/coverage")
    assert CoverageRefresh.objects.get(campaign=mapped.town.campaign).refreshed_at == before


def test_the_periodic_sweep_refreshes_running_campaigns(mapped):
    CoverageRefresh.objects.filter(campaign=mapped.town.campaign).update(
        refreshed_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    )
    assert mapped.town.campaign.pk in refresh_due_coverage()
    assert refresh_due_coverage() == []


def test_the_refresh_replaces_the_snapshot_and_follows_the_targets(mapped):
    from visits.models import CampaignNeighborhood

    CampaignNeighborhood.objects.filter(campaign=mapped.town.campaign, neighborhood=mapped.second).delete()
    result = refresh_coverage(mapped.town.campaign.pk)
    assert result["cells"] == 1
    assert list(CoverageCell.objects.filter(campaign=mapped.town.campaign).values_list("neighborhood_id", flat=True)) \
        == [mapped.town.neighborhood.id]


def test_a_campaign_without_households_or_snapshot_answers(town):
    camp = factories.campaign(town.municipality, status="draft")
    body = town.client("coordinator").get(f"maps/coverage?campaign={camp.id}").json()
    assert body["count"] == 0 and body["totals"]["in_scope"] == 0 and body["totals"]["state"] == "not_started"


@pytest.mark.parametrize("role", sorted(ALL_ROLES))
def test_every_role_reads_coverage(mapped, role):
    r = mapped.client(role).get("maps/coverage")
    assert r.status_code == 200, (role, r.content)


@pytest.mark.parametrize("path", [
    "maps/coverage?campaign={campaign}", "maps/coverage/weekly?campaign={campaign}",
    "maps/coverage?neighborhood={hood}", "maps/coverage?partner={partner}",
    "maps/coverage/weekly?neighborhood={hood}", "maps/neighborhoods.geojson?campaign={campaign}",
    "maps/tiles/neighborhoods/12/3568/1616.mvt?campaign={campaign}",
])
def test_another_municipalitys_ids_are_404(town, other_town, path):
    url = path.format(campaign=other_town.campaign.id, hood=other_town.neighborhood.id, partner=other_town.partner.id)
    assert_error_body(town.client("coordinator").get(url), 404, "not_found")


@pytest.mark.parametrize("query", [
    "group_by=street", "limit=0", "limit=501", "offset=-1", "campaign=abc", "neighborhood=x",
])
def test_bad_coverage_queries_are_422(town, query):
    assert_error_body(town.client("coordinator").get(f"maps/coverage?{query}"), 422)


def test_coverage_reads_in_a_fixed_number_of_queries(mapped):
    """However many 自治会: auth, the campaign, the snapshot's freshness, the read."""
    client = mapped.client("coordinator")
    client.get("maps/coverage")  # warm: the refresh (if any) is done
    with CaptureQueriesContext(connection) as small:
        assert client.get("maps/coverage").status_code == 200
    for _ in range(5):
        hood = factories.neighborhood(mapped.town.municipality)
        factories.target(mapped.town.campaign, hood)
        factories.household(mapped.town.municipality, at=factories.centre(hood))
    refresh_coverage(mapped.town.campaign.pk)
    with CaptureQueriesContext(connection) as large:
        body = client.get("maps/coverage").json()
    assert body["count"] == 7
    assert len(large) == len(small) <= 6, [q["sql"][:80] for q in large.captured_queries]


# --- the overdue list -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["coordinator", "supervisor"])
def test_overdue_lists_cases_and_watches(mapped, other_town, role):
    from outreach import services as outreach

    outreach.open_case(by=other_town.users["coordinator"], household_id=other_town.household.id, title="他の町",
                       opened_on=dt.date(2025, 1, 1))
    outreach.sweep_overdue()
    body = mapped.client(role).get("maps/overdue").json()
    assert body["count"] == 2
    kinds = {item["kind"]: item for item in body["items"]}
    assert kinds["case"]["id"] == str(mapped.case.id) and kinds["case"]["days_overdue"] > 0
    assert kinds["case"]["label"] == "長期ひきこもり (50代男性)" and kinds["case"]["responsible"] == mapped.town.partner.name
    assert kinds["watch"]["id"] == str(mapped.watch.id) and kinds["watch"]["label"] == "見守り 太郎"
    assert kinds["case"]["location"]["type"] == "Point"
    assert [i["due"] for i in body["items"]] == sorted(i["due"] for i in body["items"])
    only = mapped.client(role).get("maps/overdue?kind=watch").json()
    assert [i["kind"] for i in only["items"]] == ["watch"]


@pytest.mark.parametrize("role", ["outreach_worker", "commissioner", "admin"])
def test_overdue_is_for_coordinators_and_supervisors(mapped, role):
    assert_error_body(mapped.client(role).get("maps/overdue"), 403, "forbidden")


def test_overdue_reads_in_a_fixed_number_of_queries(mapped, django_assert_max_num_queries):
    client = mapped.client("supervisor")
    with django_assert_max_num_queries(4):  # token scope, token, last-used, the list
        assert client.get("maps/overdue").json()["count"] == 2


def test_layers_describe_the_page_for_the_role(mapped):
    admin = mapped.client("admin").get("maps/layers").json()
    allowed = {layer["name"]: layer["allowed"] for layer in admin["layers"]}
    assert allowed == {"neighborhoods": True, "resources": True, "hexagons": True, "concerns": False, "cases": False,
                       "households": False}
    assert admin["overdue"] is False and admin["current_campaign_id"] == mapped.town.campaign.id
    assert len(admin["bounds"]) == 4
    coordinator = mapped.client("coordinator").get("maps/layers").json()
    assert all(layer["allowed"] for layer in coordinator["layers"]) and coordinator["overdue"] is True
    assert coordinator["withheld_indicators"] == []
    commissioner = mapped.client("commissioner").get("maps/layers").json()
    assert commissioner["withheld_indicators"] == ["open_case"]
