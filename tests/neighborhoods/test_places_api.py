"""The places API: 自治会, households, residents, resources, scoped by role."""

import pytest
from django.contrib.gis.geos import Point

from audit.models import AuditEvent
from neighborhoods.models import Household
from neighborhoods.services import assign_households
from tests import factories
from tests.api.test_errors import assert_error_body


@pytest.fixture
def two_hoods(town):
    """A second 自治会 next to the town's first one, with households in each and one outside both."""
    first = town.neighborhood
    lon, lat = first.geom.extent[:2]
    second = factories.neighborhood(town.municipality, name="東園", geom=factories.square(lon + 0.01, lat))
    factories.household(town.municipality, at=(lon + 0.015, lat + 0.005), address="北栄町東園12", address_kana="ホクエイチョウヒガシソノ12")
    factories.household(town.municipality, at=(lon + 0.016, lat + 0.004), address="北栄町東園13")
    outside = factories.household(town.municipality, at=(lon - 0.005, lat - 0.005), address="どこでもない1")
    return first, second, outside


def test_neighborhood_list_has_household_counts(town, two_hoods, django_assert_max_num_queries):
    first, second, _ = two_hoods
    with django_assert_max_num_queries(6):
        r = town.client("supervisor").get("neighborhoods")
    assert r.status_code == 200
    counts = {n["id"]: n["household_count"] for n in r.json()["items"]}
    assert counts == {first.id: 1, second.id: 2}


def test_neighborhood_detail_has_geometry_and_status_counts(town, two_hoods):
    _, second, _ = two_hoods
    body = town.client("commissioner").get(f"neighborhoods/{second.id}").json()
    assert body["geometry"]["type"] == "MultiPolygon"
    assert body["households_by_status"] == {"occupied": 2}
    assert 800_000 < body["area_m2"] < 1_200_000  # 0.01° x 0.01° at 35.5° N ≈ 1.0 km²


def test_geojson_feature_collection_in_one_query(town, two_hoods, django_assert_max_num_queries):
    client = town.client("supervisor")
    # token, last-used, the data version, the cache lookup (a miss), the collection, keeping it
    with django_assert_max_num_queries(6):
        r = client.get("neighborhoods.geojson", query={"simplify": 0.0001})
    assert r.status_code == 200
    assert r["Content-Type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    props = {f["properties"]["code"]: f["properties"]["household_count"] for f in fc["features"]}
    assert props == {two_hoods[0].code: 1, two_hoods[1].code: 2}
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in fc["features"])


def _inside(hood) -> str:
    """A bbox strictly inside a 自治会's square (the squares of neighbours share an edge)."""
    x0, y0, x1, y1 = hood.geom.extent
    return f"{x0 + 0.001},{y0 + 0.001},{x1 - 0.001},{y1 - 0.001}"


@pytest.mark.parametrize("path", ["neighborhoods.geojson", "maps/neighborhoods.geojson"])
def test_geojson_of_a_map_view_holds_the_neighborhoods_meeting_it(town, two_hoods, path):
    first, second, _ = two_hoods
    client = town.client("supervisor")
    codes = {f["properties"]["code"] for f in client.get(path, query={"bbox": _inside(second)}).json()["features"]}
    assert codes == {second.code}
    whole = client.get(path).json()["features"]
    assert {f["properties"]["code"] for f in whole} == {first.code, second.code}
    far = client.get(path, query={"bbox": "139.0,35.0,139.1,35.1"}).json()
    assert far == {"type": "FeatureCollection", "features": []}


@pytest.mark.parametrize("path", ["neighborhoods.geojson", "maps/neighborhoods.geojson"])
@pytest.mark.parametrize("bbox", ["1,2,3", "10,10,5,5", "0,0,200,10"])
def test_geojson_bbox_nonsense_is_422(town, path, bbox):
    assert_error_body(town.client("supervisor").get(path, query={"bbox": bbox}), 422, "invalid")


def test_map_geojson_etag_differs_by_view(town, two_hoods):
    client = town.client("supervisor")
    whole = client.get("maps/neighborhoods.geojson")
    view = client.get("maps/neighborhoods.geojson", query={"bbox": _inside(two_hoods[1])})
    assert whole["ETag"] and view["ETag"] and whole["ETag"] != view["ETag"]
    again = client.get("maps/neighborhoods.geojson", query={"bbox": _inside(two_hoods[1])},
                       headers={"If-None-Match": view["ETag"]})
    assert again.status_code == 304


def test_households_outside_every_neighborhood_are_listed_not_dropped(town, two_hoods):
    *_, outside = two_hoods
    items = town.client("coordinator").get("households", query={"unassigned": "true"}).json()["items"]
    assert [h["id"] for h in items] == [str(outside.id)]
    assert assign_households(municipality_id=town.municipality.id).unassigned == 1


def test_household_filters(town, two_hoods):
    first, second, _ = two_hoods
    client = town.client("coordinator")
    by_hood = client.get("households", query={"neighborhood": second.id}).json()
    assert by_hood["count"] == 2
    by_kana = client.get("households", query={"q": "ヒガシソノ"}).json()
    assert [h["address"] for h in by_kana["items"]] == ["北栄町東園12"]
    x0, y0, x1, y1 = first.geom.extent
    in_box = client.get("households", query={"bbox": f"{x0},{y0},{x1},{y1}"}).json()
    assert [h["id"] for h in in_box["items"]] == [str(town.household.id)]
    flagged = client.get("households", query={"risk_flag": "hoarding"}).json()
    assert flagged["count"] == 0


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "10,10,5,5", "0,0,200,10"])
def test_bbox_nonsense_is_422(town, bbox):
    assert_error_body(town.client("coordinator").get("households", query={"bbox": bbox}), 422, "invalid")


def test_household_detail_shows_residents_and_is_audited(town):
    client = town.client("outreach_worker")
    r = client.get(f"households/{town.household.id}")
    assert r.status_code == 200
    body = r.json()
    assert [p["flags"] for p in body["residents"]] == [["care_need"]]
    assert body["neighborhood"]["id"] == town.neighborhood.id
    event = AuditEvent.objects.get(object_id=str(town.household.id))
    assert event.actor == town.users["outreach_worker"]
    assert event.basis == f"allocation:partner_organization={town.partner.id}"
    assert event.device_token_id is not None


def test_worker_sees_only_households_allocated_to_their_corporation(town, two_hoods):
    _, second, _ = two_hoods
    client = town.client("outreach_worker")
    assert client.get("households").json()["count"] == 1
    other = Household.objects.filter(neighborhood=second).first()
    assert_error_body(client.get(f"households/{other.id}"), 404)
    factories.allocate(second, town.partner)
    assert client.get("households").json()["count"] == 3
    assert client.get(f"households/{other.id}").status_code == 200


def test_commissioner_sees_only_their_own_neighborhood(town, two_hoods):
    client = town.client("commissioner")
    ids = [h["id"] for h in client.get("households").json()["items"]]
    assert ids == [str(town.household.id)]


def test_admin_sees_places_but_no_households(town):
    client = town.client("admin")
    assert client.get("neighborhoods").json()["count"] == 1
    assert client.get("households").json()["count"] == 0
    assert_error_body(client.get(f"households/{town.household.id}"), 404)


def test_coordinator_creates_a_household_assigned_by_its_point(town, two_hoods):
    _, second, _ = two_hoods
    x, y = second.geom.point_on_surface.coords
    r = town.client("coordinator").post(
        "households",
        {"external_id": "NEW-1", "address": "北栄町東園99", "location": {"type": "Point", "coordinates": [x, y]},
         "living_arrangement": "elderly_only", "risk_flags": ["8050"]},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["neighborhood_id"] == second.id
    assert body["version"] == 1
    dup = town.client("coordinator").post("households", {"external_id": "NEW-1", "address": "x"})
    assert_error_body(dup, 409, "duplicate_external_id")


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"external_id": "X", "address": "a", "location": {"type": "Point", "coordinates": [133.7, 95]}}, "location"),
        ({"external_id": "X", "address": "a", "risk_flags": ["unknown"]}, "risk_flags"),
        ({"external_id": "X", "address": "a", "owner": "me"}, "owner"),
        ({"external_id": "", "address": "a"}, "external_id"),
    ],
)
def test_bad_household_input_is_422_and_writes_nothing(town, payload, where):
    before = Household.objects.count()
    err = assert_error_body(town.client("coordinator").post("households", payload), 422, "invalid")
    assert any(where in d["loc"] for d in err["details"])
    assert Household.objects.count() == before


@pytest.mark.parametrize("role", ["supervisor", "outreach_worker", "commissioner", "admin"])
def test_only_coordinators_write_households(town, role):
    r = town.client(role).post("households", {"external_id": "X", "address": "a"})
    assert r.status_code in (403, 404)
    assert not Household.objects.filter(external_id="X").exists()


def test_edit_with_a_stale_version_is_409_and_changes_nothing(town, two_hoods):
    _, second, _ = two_hoods
    client = town.client("coordinator")
    hh = town.household
    moved = second.geom.point_on_surface
    r = client.patch(f"households/{hh.id}", {"version": hh.version, "location": {"type": "Point", "coordinates": list(moved.coords)}})
    assert r.status_code == 200, r.content
    assert r.json()["neighborhood_id"] == second.id
    assert r.json()["version"] == hh.version + 1
    stale = client.patch(f"households/{hh.id}", {"version": hh.version, "status": "vacant"})
    err = assert_error_body(stale, 409, "stale_version")
    assert err["details"]["version"] == hh.version + 1
    hh.refresh_from_db()
    assert hh.status == "occupied"


def test_residents_are_added_and_edited_with_versions(town):
    client = town.client("coordinator")
    r = client.post(f"households/{town.household.id}/residents", {"name": "山根 花子", "birth_year": 1975, "relation": "child", "flags": ["hikikomori"]})
    assert r.status_code == 201, r.content
    rid = r.json()["id"]
    ok = client.patch(f"residents/{rid}", {"version": 1, "flags": []})
    assert ok.status_code == 200 and ok.json()["flags"] == [] and ok.json()["version"] == 2
    assert_error_body(client.patch(f"residents/{rid}", {"version": 1, "flags": ["dementia"]}), 409, "stale_version")
    assert_error_body(client.post(f"households/{town.household.id}/residents", {"name": "x", "birth_year": 1700}), 422)


def test_resources_list_and_filter(town):
    lon, lat = factories.centre(town.neighborhood)
    factories.resource(town.municipality, at=(lon, lat), type="kodomo_shokudo", name="みんなの食堂")
    client = town.client("commissioner")
    assert client.get("resources").json()["count"] == 2
    only = client.get("resources", query={"type": "kodomo_shokudo"}).json()["items"]
    assert [r["name"] for r in only] == ["みんなの食堂"]
    assert only[0]["location"]["coordinates"] == pytest.approx([lon, lat])


def test_assignment_is_one_idempotent_update(town, two_hoods):
    first, _, outside = two_hoods
    Household.objects.filter(pk=outside.pk).update(location=Point(*factories.centre(first), srid=4326))
    result = assign_households(municipality_id=town.municipality.id)
    assert (result.changed, result.unassigned) == (1, 0)
    outside.refresh_from_db()
    assert outside.neighborhood_id == first.id
    again = assign_households(municipality_id=town.municipality.id)
    assert (again.changed, again.unassigned) == (0, 0)


def test_districts_and_areas_list(town):
    from neighborhoods.models import DailyLifeArea, District

    d = District.objects.create(municipality=town.municipality, name="北条")
    a = DailyLifeArea.objects.create(municipality=town.municipality, name="北条圏域")
    town.neighborhood.district = d
    town.neighborhood.daily_life_area = a
    town.neighborhood.save()
    assert town.client("supervisor").get("districts").json() == {
        "items": [{"id": d.id, "name": "北条", "code": "", "neighborhood_count": 1}], "count": 1, "count_capped": False}
    areas = town.client("supervisor").get("daily-life-areas").json()["items"]
    assert areas[0]["household_count"] == 1
