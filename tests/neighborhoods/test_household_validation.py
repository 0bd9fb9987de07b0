"""Values a household or resident cannot have are refused with a 422 naming the field: explicit
nulls where null means nothing, implausible birth years, and points outside the municipality."""

import uuid

import pytest

from neighborhoods.models import Household
from tests import factories
from tests.api.test_errors import assert_error_body


def locs(err: dict) -> list[list]:
    return [d["loc"] for d in err["details"]]


@pytest.mark.parametrize("field", ["risk_flags", "status", "address", "address_kana"])
def test_an_explicit_null_is_refused_where_it_means_nothing(town, field):
    hh = town.household
    r = town.client("coordinator").patch(f"households/{hh.id}", {"version": hh.version, field: None})
    err = assert_error_body(r, 422, "invalid")
    assert ["body", field] in locs(err)
    assert Household.objects.get(pk=hh.pk).version == hh.version


def test_null_clears_the_location_and_the_living_arrangement(town):
    hh = town.household
    r = town.client("coordinator").patch(
        f"households/{hh.id}", {"version": hh.version, "location": None, "living_arrangement": None}
    )
    assert r.status_code == 200, r.content
    assert r.json()["location"] is None
    assert r.json()["living_arrangement"] == ""
    assert r.json()["neighborhood_id"] is None


@pytest.mark.parametrize("field", ["flags", "name", "relation"])
def test_resident_nulls_are_refused(town, field):
    resident = town.resident
    r = town.client("coordinator").patch(f"residents/{resident.id}", {"version": resident.version, field: None})
    assert ["body", field] in locs(assert_error_body(r, 422, "invalid"))


def test_resident_birth_years_are_plausible(town):
    client = town.client("coordinator")
    for year in (1899, 2100, 0):
        r = client.post(f"households/{town.household.id}/residents", {"name": "山田", "birth_year": year})
        assert ["body", "birth_year"] in locs(assert_error_body(r, 422, "invalid"))
    r = client.patch(f"residents/{town.resident.id}", {"version": town.resident.version, "birth_year": None})
    assert r.status_code == 200, r.content
    assert r.json()["birth_year"] is None


def test_the_patch_schema_says_what_may_be_null(town):
    spec = town.client("coordinator").get("/api/v1/openapi.json").json()
    props = spec["components"]["schemas"]["HouseholdPatch"]["properties"]
    assert "anyOf" not in props["risk_flags"] and props["risk_flags"]["type"] == "array"
    assert "default" not in props["risk_flags"]
    assert {"type": "null"} in props["location"]["anyOf"]


def _point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


@pytest.mark.parametrize("where", ["null_island", "southern", "next_town"])
def test_a_household_outside_the_municipality_is_refused(town, where):
    lon, lat = factories.centre(town.neighborhood)
    point = {"null_island": (0.0, 0.0), "southern": (lon, -lat), "next_town": (lon + 0.2, lat)}[where]
    client = town.client("coordinator")
    r = client.post("households", {"external_id": "OUT-1", "address": "どこか", "location": _point(*point)})
    err = assert_error_body(r, 422, "outside_municipality")
    assert ["body", "location"] in locs(err)
    assert not Household.objects.filter(external_id="OUT-1").exists()
    hh = town.household
    r = client.patch(f"households/{hh.id}", {"version": hh.version, "location": _point(*point)})
    assert_error_body(r, 422, "outside_municipality")
    hh.refresh_from_db()
    assert (hh.location.x, hh.location.y) == pytest.approx((lon, lat))


def test_a_household_in_no_neighborhood_but_inside_the_municipality_is_kept_unassigned(town):
    west, south = town.neighborhood.geom.extent[:2]
    r = town.client("coordinator").post(
        "households", {"external_id": "EDGE-1", "address": "山あい1", "location": _point(west - 0.005, south - 0.005)}
    )
    assert r.status_code == 201, r.content
    assert r.json()["neighborhood_id"] is None


def test_sync_household_update_outside_is_rejected_alone(town):
    client = town.client("outreach_worker")
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id, "name": "iPad"}).status_code == 201
    hh = town.household
    far = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": hh.version,
           "data": {"id": str(hh.id), "location": {"lon": 0.0, "lat": 0.0}}}
    nulled = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": hh.version,
              "data": {"id": str(hh.id), "risk_flags": None}}
    fine = {"op_id": str(uuid.uuid4()), "kind": "household.update", "base_version": hh.version,
            "data": {"id": str(hh.id), "risk_flags": ["hoarding"]}}
    r = client.post("sync/push", {"device_id": device_id, "ops": [far, nulled, fine]})
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert results[0]["status"] == "rejected" and results[0]["error"]["code"] == "outside_municipality"
    assert results[1]["status"] == "rejected" and results[1]["error"]["details"][0]["loc"] == ["data", "risk_flags"]
    assert results[2]["status"] == "applied", results[2]
    hh.refresh_from_db()
    assert hh.risk_flags == ["hoarding"]
    assert hh.location.x != 0.0
