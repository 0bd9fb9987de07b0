"""One point shape: every sync kind takes a GeoJSON Point (a visit's GPS fix with the foreign member
`accuracy_m`), and still the deprecated `{lon, lat[, accuracy_m]}`, through one parser
(api.geo.SyncPointIn); both store the same point. A malformed point is rejected with a loc."""

import uuid

import pytest

from neighborhoods.models import Household
from outreach.models import Concern
from tests.visits.test_sync import push, tablet, visit_op  # noqa: F401  (tablet is a fixture)
from visits.models import VisitRecord


def _forms(x: float, y: float, accuracy: float | None = None) -> list[dict]:
    geojson: dict = {"type": "Point", "coordinates": [x, y]}
    legacy: dict = {"lon": x, "lat": y}
    if accuracy is not None:
        geojson["accuracy_m"] = accuracy
        legacy["accuracy_m"] = accuracy
    return [geojson, legacy]


def _device(client) -> str:
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id}).status_code == 201
    return device_id


def test_a_visit_location_in_either_form_stores_the_same_point(town, tablet):  # noqa: F811
    x, y = town.household.location.x + 0.0001, town.household.location.y
    stored = []
    for location in _forms(x, y, accuracy=12):
        result = push(tablet, [visit_op(town, location=location)])[0]
        assert result["status"] == "applied", result
        record = VisitRecord.objects.get(pk=result["id"])
        stored.append((round(record.location.x, 7), round(record.location.y, 7), record.accuracy_m, record.distance_m))
    assert stored[0] == stored[1]
    assert stored[0][:3] == (round(x, 7), round(y, 7), 12)


def test_a_household_location_in_either_form_stores_the_same_point(town, tablet):  # noqa: F811
    hh = town.household
    x, y = hh.location.x + 0.0002, hh.location.y + 0.0001
    points = []
    for location in _forms(x, y):
        hh.refresh_from_db()
        op = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": hh.version,
              "data": {"id": str(hh.id), "location": location}}
        result = push(tablet, [op])[0]
        assert result["status"] == "applied", result
        stored = Household.objects.get(pk=hh.pk).location
        points.append((round(stored.x, 7), round(stored.y, 7)))
    assert points[0] == points[1] == (round(x, 7), round(y, 7))


def test_a_concern_pin_in_either_form_stores_the_same_point(town):
    client = town.client("commissioner")
    device_id = _device(client)
    x, y = town.household.location.x, town.household.location.y
    pins = []
    for pin in _forms(x, y):
        concern_id = str(uuid.uuid4())
        op = {"op_id": str(uuid.uuid4()), "kind": "concern.create", "data": {
            "id": concern_id, "pin": pin, "place_description": "公民館の裏", "categories": ["isolation"]}}
        r = client.post("sync/push", {"device_id": device_id, "ops": [op]})
        assert r.status_code == 200 and r.json()["results"][0]["status"] == "applied", r.content
        stored = Concern.objects.get(pk=concern_id).pin
        pins.append((round(stored.x, 7), round(stored.y, 7)))
    assert pins[0] == pins[1] == (round(x, 7), round(y, 7))
    page = client.get("sync/pull", query={"device_id": device_id}).json()
    pulled = [c["data"]["pin"] for c in page["changes"] if c["kind"] == "concern"]
    assert pulled and all(p == {"type": "Point", "coordinates": [round(x, 7), round(y, 7)]} for p in pulled)


MALFORMED = [
    ({"type": "Point", "coordinates": [133.7, 35.4, 10]}, ["data", "location", "coordinates"]),
    ({"type": "Point", "coordinates": [133.7, 95]}, ["data", "location", "coordinates"]),
    ({"type": "Point", "coordinates": [200, 35.4]}, ["data", "location", "coordinates"]),
    ({"type": "LineString", "coordinates": [133.7, 35.4]}, ["data", "location", "type"]),
    ({"type": "Point", "coordinates": ["133.7", 35.4]}, ["data", "location", "coordinates"]),
    ({"type": "Point", "coordinates": [133.7, 35.4], "lon": 133.7}, ["data", "location", "lon"]),
    ({"lon": 133.7, "lat": 95}, ["data", "location", "coordinates"]),
    ({"type": "Point", "coordinates": [133.7, 35.4], "accuracy_m": -1}, ["data", "location", "accuracy_m"]),
    ("133.7,35.4", ["data", "location"]),
]


@pytest.mark.parametrize(("location", "loc"), MALFORMED)
def test_a_malformed_visit_location_is_rejected_with_a_loc(town, tablet, location, loc):  # noqa: F811
    op = visit_op(town, location=location)
    result = push(tablet, [op])[0]
    assert result["status"] == "rejected" and result["error"]["code"] == "invalid", result
    assert loc in [d["loc"][:len(loc)] for d in result["error"]["details"]], result
    assert not VisitRecord.objects.filter(pk=op["data"]["id"]).exists()


@pytest.mark.parametrize(("pin", "loc"), [
    ({"type": "Point", "coordinates": [133.7, 35.4], "accuracy_m": 5}, ["data", "pin", "accuracy_m"]),
    ({"lon": 133.7}, ["data", "pin", "coordinates"]),
    ({"type": "Point", "coordinates": [133.7]}, ["data", "pin", "coordinates"]),
])
def test_a_malformed_pin_is_rejected_with_a_loc(town, pin, loc):
    client = town.client("commissioner")
    device_id = _device(client)
    op = {"op_id": str(uuid.uuid4()), "kind": "concern.create", "data": {
        "id": str(uuid.uuid4()), "pin": pin, "place_description": "x", "categories": ["isolation"]}}
    result = client.post("sync/push", {"device_id": device_id, "ops": [op]}).json()["results"][0]
    assert result["status"] == "rejected" and result["error"]["code"] == "invalid", result
    assert loc in [d["loc"][:len(loc)] for d in result["error"]["details"]], result
