"""The maps rows for tests/access_matrix.py, run here with the matrix's own rules until they are
added there: another municipality's campaign / 自治会 answers 404 for the roles that may use the
endpoint (403 or 404 for the others), and the town's own works for exactly those roles."""

import pytest

from tests.access_matrix import ALL_ROLES, HOUSEHOLD_READERS, Endpoint
from tests.maps.geo import tile_path

MAP_ENDPOINTS = [
    Endpoint("maps coverage", "GET", lambda t: f"maps/coverage?campaign={t.campaign.id}", ALL_ROLES),
    Endpoint("maps coverage of a 自治会", "GET", lambda t: f"maps/coverage?neighborhood={t.neighborhood.id}", ALL_ROLES),
    Endpoint("maps coverage by corporation", "GET",
             lambda t: f"maps/coverage?group_by=partner&partner={t.partner.id}", ALL_ROLES),
    Endpoint("maps weekly coverage", "GET", lambda t: f"maps/coverage/weekly?campaign={t.campaign.id}", ALL_ROLES),
    Endpoint("maps isolation in a 自治会", "GET", lambda t: f"maps/isolation?neighborhood={t.neighborhood.id}",
             HOUSEHOLD_READERS),
    Endpoint("maps neighborhoods geojson", "GET", lambda t: f"maps/neighborhoods.geojson?campaign={t.campaign.id}",
             ALL_ROLES),
    Endpoint("maps neighborhoods tile", "GET",
             lambda t: f"maps/tiles/neighborhoods/{tile_path(t, 13)}.mvt?campaign={t.campaign.id}", ALL_ROLES),
    Endpoint("maps households tile", "GET",
             lambda t: f"maps/tiles/households/{tile_path(t, 15)}.mvt?campaign={t.campaign.id}", HOUSEHOLD_READERS),
]


@pytest.mark.parametrize("endpoint", MAP_ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", sorted(ALL_ROLES))
def test_other_municipalitys_object_is_404(town, other_town, role, endpoint):
    r = town.client(role).request(endpoint.method, endpoint.path(other_town))
    if role in endpoint.roles:
        assert r.status_code == 404, (role, endpoint.name, r.status_code, r.content)
    else:
        assert r.status_code in (403, 404), (role, endpoint.name, r.status_code, r.content)
    assert r.json()["error"]["code"] in ("not_found", "forbidden", "forbidden")


@pytest.mark.parametrize("endpoint", MAP_ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", sorted(ALL_ROLES))
def test_own_municipalitys_object_follows_the_role(town, role, endpoint):
    r = town.client(role).request(endpoint.method, endpoint.path(town))
    if role in endpoint.roles:
        assert r.status_code == endpoint.ok, (role, endpoint.name, r.status_code, r.content)
    else:
        assert r.status_code in (403, 404), (role, endpoint.name, r.status_code, r.content)


def test_the_households_tile_of_the_town_holds_its_household(town):
    from tests.maps.mvt import decode

    r = town.client("commissioner").get(f"maps/tiles/households/{tile_path(town, 15)}.mvt")
    ids = [f.properties["id"] for f in decode(r.content)["households"].features]
    assert ids == [str(town.household.id)]
