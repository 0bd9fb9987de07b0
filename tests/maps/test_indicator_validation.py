"""Indicators built on what a role may not see are refused, not turned into an SQL error: a
民生委員 never sees cases, so asking the map for households with an open case is a 403."""

import pytest

from tests import factories
from tests.api.test_errors import assert_error_body
from tests.maps.geo import tile_xy


def _tile(town, z: int = 15) -> str:
    x, y = tile_xy(*factories.centre(town.neighborhood), z)
    return f"maps/tiles/households/{z}/{x}/{y}.mvt"


def test_a_commissioner_asking_for_open_cases_is_403(town):
    client = town.client("commissioner")
    err = assert_error_body(client.get("maps/isolation", query={"indicator": "open_case"}), 403, "forbidden")
    assert err["details"] == {"indicators": ["open_case"]}
    err = assert_error_body(client.get(_tile(town), query={"indicator": "open_case"}), 403, "forbidden")
    assert err["details"] == {"indicators": ["open_case"]}
    withheld = client.get("maps/layers").json()["withheld_indicators"]
    assert "open_case" in withheld


@pytest.mark.parametrize("indicator", ["single_elderly", "open_concern"])
def test_a_commissioner_still_filters_by_what_they_may_see(town, indicator):
    client = town.client("commissioner")
    r = client.get("maps/isolation", query={"indicator": indicator})
    assert r.status_code == 200, r.content
    assert r.json()["withheld"] == ["open_case"]
    assert client.get(_tile(town), query={"indicator": indicator}).status_code in (200, 204)


def test_a_coordinator_filters_by_open_cases(town):
    town.with_outreach()
    r = town.client("coordinator").get("maps/isolation", query={"indicator": "open_case"})
    assert r.status_code == 200, r.content
    assert [i["household_id"] for i in r.json()["items"]] == [str(town.household.id)]
