"""GET /households/unplaced, GET /households/placement-summary and POST /households/{id}/placement:
roles, another municipality (404), the Japan box (422), stale versions (409), the audit event."""

import pytest

from audit.models import AuditEvent
from neighborhoods.models import Household
from tests import factories


@pytest.fixture
def unplaced(town):
    return factories.household(town.municipality, external_id="U001", address="中央三丁目5番12号 コーポ山田201号")


@pytest.mark.parametrize(("role", "status"), [("coordinator", 200), ("supervisor", 200), ("outreach_worker", 403),
                                              ("commissioner", 403), ("admin", 403)])
def test_unplaced_households_are_listed_for_the_office(town, other_town, unplaced, role, status):
    factories.household(other_town.municipality, external_id="U999", address="どこか1")
    r = town.client(role).get("households/unplaced")
    assert r.status_code == status, r.content
    if status == 200:
        body = r.json()
        # the town's fixture household has a point: only the one without is listed
        assert body["count"] == 1
        assert body["items"] == [{"id": str(unplaced.id), "external_id": "U001", "address": unplaced.address,
                                  "address_normalized": "", "version": 1}]


def test_placing_by_hand_sets_the_point_the_level_and_the_neighborhood(town, unplaced):
    lon, lat = factories.centre(town.neighborhood)
    r = town.client("coordinator").post(f"households/{unplaced.id}/placement", {"lon": lon, "lat": lat, "version": 1})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["match_level"] == "manual"
    assert body["location"] == {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}
    assert body["neighborhood_id"] == town.neighborhood.id
    assert body["version"] == 2
    assert body["address_normalized"] == "中央3丁目5-12 コーポ山田201号"
    event = AuditEvent.objects.get(object_id=str(unplaced.id), action="change")
    assert event.detail["from"]["match_level"] == "unmatched" and event.detail["placement"] == "manual"
    # no longer unplaced
    assert town.client("coordinator").get("households/unplaced").json()["count"] == 0
    # the same point again changes nothing
    again = town.client("coordinator").post(f"households/{unplaced.id}/placement", {"lon": lon, "lat": lat, "version": 2})
    assert again.json()["version"] == 2


def test_a_stale_version_is_409(town, unplaced):
    lon, lat = factories.centre(town.neighborhood)
    Household.objects.filter(pk=unplaced.pk).update(version=3)
    r = town.client("coordinator").post(f"households/{unplaced.id}/placement", {"lon": lon, "lat": lat, "version": 1})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "stale_version"
    assert Household.objects.get(pk=unplaced.pk).location is None


@pytest.mark.parametrize(("body", "where"), [
    ({"lon": 2.35, "lat": 35.0}, ["body", "lon"]),  # Paris' longitude
    ({"lon": 133.7, "lat": -35.0}, ["body", "lat"]),
    ({"lon": 35.49, "lat": 133.7}, ["body", "lon"]),  # swapped
])
def test_a_point_outside_japan_is_422_where_it_is(town, unplaced, body, where):
    r = town.client("coordinator").post(f"households/{unplaced.id}/placement", {**body, "version": 1})
    assert r.status_code == 422
    assert where in [d["loc"] for d in r.json()["error"]["details"]]
    assert Household.objects.get(pk=unplaced.pk).location is None


def test_a_point_in_japan_but_outside_the_municipality_is_422(town, unplaced):
    r = town.client("coordinator").post(f"households/{unplaced.id}/placement", {"lon": 139.7, "lat": 35.68, "version": 1})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "outside_municipality"
    assert r.json()["error"]["details"][0]["loc"] == ["body", "lon"]


def test_another_municipalitys_household_is_404(town, other_town):
    theirs = factories.household(other_town.municipality, address="どこか1")
    lon, lat = factories.centre(other_town.neighborhood)
    r = town.client("coordinator").post(f"households/{theirs.id}/placement", {"lon": lon, "lat": lat, "version": 1})
    assert r.status_code == 404
    assert Household.objects.get(pk=theirs.pk).location is None


@pytest.mark.parametrize("role", ["supervisor", "outreach_worker", "commissioner", "admin"])
def test_only_coordinators_place(town, unplaced, role):
    lon, lat = factories.centre(town.neighborhood)
    r = town.client(role).post(f"households/{unplaced.id}/placement", {"lon": lon, "lat": lat, "version": 1})
    assert r.status_code == 403
    assert Household.objects.get(pk=unplaced.pk).location is None


def test_the_summary_counts_households_by_level(town, other_town, unplaced):
    factories.household(other_town.municipality, address="どこか1")
    r = town.client("supervisor").get("households/placement-summary")
    assert r.status_code == 200, r.content
    body = r.json()
    # the fixture household (created with a point) and the unplaced one; not the other town's
    fixture = Household.objects.get(pk=town.household.pk).match_level
    expected = {level: 0 for level in ("coordinates", "residence", "block", "town", "manual", "unmatched")}
    expected[fixture] += 1
    expected["unmatched"] += 1
    assert body["households"] == {**expected, "total": 2}
    assert body["references"] == {"residence": 0, "block": 0, "town": 0}
    assert town.client("commissioner").get("households/placement-summary").status_code == 403
