"""The isolation layer: indicators per household, the nearest community resource (KNN, then the
distance on the ellipsoid), filters, and who may see it."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import factories
from tests.api.test_errors import assert_error_body
from visits.models import VisitRecord


def _by_id(body) -> dict:
    return {item["household_id"]: item for item in body["items"]}


def _met(town, household, days_ago: int) -> None:
    VisitRecord.objects.create(
        id=uuid.uuid4(), municipality=town.municipality, household=household, worker=town.users["outreach_worker"],
        outcome="met", visited_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def test_indicators_of_each_household(mapped):
    body = mapped.client("coordinator").get("maps/isolation?limit=500").json()
    assert body["withheld"] == [] and body["months"] == 6
    items = _by_id(body)
    hoarding = items[str(mapped.households["hoarding"].id)]
    assert sorted(hoarding["indicators"]) == sorted(["elderly_only", "hoarding", "no_contact", "open_concern", "open_case"])
    assert "single_elderly" in items[str(mapped.town.household.id)]["indicators"]
    assert "refused" in items[str(mapped.households["refused"].id)]["indicators"]
    assert {"8050", "hikikomori"} <= set(items[str(mapped.second_households[0].id)]["indicators"])
    assert str(mapped.households["vacant"].id) not in items  # nobody lives there
    assert hoarding["location"]["type"] == "Point"


def test_no_contact_follows_the_months(mapped):
    town = mapped.town
    recent, old = mapped.second_households[1], mapped.second_households[2]
    _met(town, recent, 30)
    _met(town, old, 400)
    client = mapped.client("coordinator")
    six = _by_id(client.get("maps/isolation?limit=500").json())
    assert str(recent.id) not in six  # met a month ago, nothing else: not listed
    assert six[str(old.id)]["indicators"] == ["no_contact"]
    two_years = _by_id(client.get("maps/isolation?limit=500&months=24").json())
    assert str(old.id) not in two_years
    assert str(mapped.second_households[3].id) in two_years  # never met


def test_filter_by_indicators_means_all_of_them(mapped):
    client = mapped.client("coordinator")
    body = client.get("maps/isolation?indicator=hoarding&indicator=open_case").json()
    assert [i["household_id"] for i in body["items"]] == [str(mapped.households["hoarding"].id)]
    assert body["count"] == 1
    body = client.get("maps/isolation?indicator=8050").json()
    assert [i["household_id"] for i in body["items"]] == [str(mapped.second_households[0].id)]
    body = client.get(f"maps/isolation?indicator=refused&neighborhood={mapped.second.id}").json()
    assert body["count"] == 0


def test_the_nearest_resource_is_the_nearest_on_the_ellipsoid(mapped):
    body = mapped.client("coordinator").get("maps/isolation?limit=500").json()
    with connection.cursor() as cursor:
        for item in body["items"]:
            cursor.execute(
                """SELECT r.id, ST_Distance(r.location::geography, h.location::geography)
                     FROM neighborhoods_communityresource r, neighborhoods_household h
                    WHERE h.id = %s AND r.municipality_id = h.municipality_id
                    ORDER BY 2 LIMIT 1""",
                [item["household_id"]],
            )
            rid, metres = cursor.fetchone()
            assert item["nearest_resource"]["id"] == rid
            assert item["nearest_resource"]["distance_m"] == pytest.approx(metres, abs=0.1)
    second = _by_id(body)[str(mapped.second_households[5].id)]
    assert second["nearest_resource"]["name"] == "子ども食堂テスト"


def test_a_commissioner_sees_only_their_neighborhood_and_no_case_indicator(mapped):
    body = mapped.client("commissioner").get("maps/isolation?limit=500").json()
    own = {str(h.id) for h in [mapped.town.household, *mapped.households.values()]}
    assert set(_by_id(body)) <= own and set(_by_id(body))
    assert body["withheld"] == ["open_case"]
    assert all("open_case" not in item["indicators"] for item in body["items"])
    hoarding = _by_id(body)[str(mapped.households["hoarding"].id)]
    assert "open_concern" in hoarding["indicators"]  # their own flag


def test_a_worker_sees_the_allocated_neighborhood(mapped):
    body = mapped.client("outreach_worker").get("maps/isolation?limit=500").json()
    own = {str(h.id) for h in [mapped.town.household, *mapped.households.values()]}
    assert set(_by_id(body)) <= own
    assert str(mapped.second_households[0].id) not in _by_id(body)


def test_the_admin_may_not_see_households(mapped):
    assert_error_body(mapped.client("admin").get("maps/isolation"), 403, "forbidden")


def test_another_municipalitys_households_never_appear(mapped, other_town):
    body = mapped.client("coordinator").get("maps/isolation?limit=500").json()
    assert str(other_town.household.id) not in _by_id(body)
    assert_error_body(
        mapped.client("coordinator").get(f"maps/isolation?neighborhood={other_town.neighborhood.id}"), 404, "not_found"
    )


@pytest.mark.parametrize("query", [
    "months=0", "months=121", "indicator=lonely", "bbox=1,2,3", "bbox=10,10,5,5", "bbox=a,b,c,d", "limit=501",
])
def test_bad_isolation_queries_are_422(mapped, query):
    assert_error_body(mapped.client("coordinator").get(f"maps/isolation?{query}"), 422)


def test_bbox_and_paging(mapped):
    client = mapped.client("coordinator")
    x0, y0, x1, y1 = mapped.second.geom.extent
    body = client.get(f"maps/isolation?bbox={x0},{y0},{x1},{y1}&limit=500").json()
    assert set(_by_id(body)) == {str(h.id) for h in mapped.second_households}
    page1 = client.get("maps/isolation?limit=2").json()
    page2 = client.get("maps/isolation?limit=2&offset=2").json()
    past = client.get("maps/isolation?limit=2&offset=100").json()
    assert page1["count"] == page2["count"] == past["count"] >= 4 and past["items"] == []
    assert not set(_by_id(page1)) & set(_by_id(page2))


def test_isolation_reads_in_a_fixed_number_of_queries(mapped):
    client = mapped.client("coordinator")
    client.get("maps/isolation?limit=1")  # the token's last-used time is written once
    with CaptureQueriesContext(connection) as small:
        client.get("maps/isolation?limit=500")
    for _ in range(10):
        factories.household(mapped.town.municipality, at=factories.centre(mapped.second), living_arrangement="single_elderly")
    with CaptureQueriesContext(connection) as large:
        body = client.get("maps/isolation?limit=500").json()
    assert body["count"] >= 20
    assert len(large) == len(small) <= 3, [q["sql"][:80] for q in large.captured_queries]
