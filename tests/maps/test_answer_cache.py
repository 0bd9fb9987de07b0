"""Whole-town GeoJSON kept in the tile cache's table (maps.tile_cache.kept_answer): a repeated read
is served without building the collection again, and any change under it (a household, a 自治会's
name, a coverage refresh) is in the next read. A map's view (bbox) is never kept."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from maps.models import CachedTile
from maps.services import refresh_coverage
from tests import factories
from visits import services as visits


def _get(client, path: str) -> tuple[dict, int]:
    """The answer, and how many statements built a FeatureCollection for it."""
    with CaptureQueriesContext(connection) as captured:
        r = client.get(path)
    assert r.status_code == 200, r.content
    builds = sum("FeatureCollection" in q["sql"] for q in captured.captured_queries)
    return r.json(), builds


def _counts(fc: dict) -> dict:
    return {f["properties"]["code"]: f["properties"]["household_count"] for f in fc["features"]}


def test_the_town_geojson_is_kept_until_what_it_shows_changes(town):
    client = town.client("supervisor")
    first, built = _get(client, "neighborhoods.geojson")
    assert built == 1
    assert CachedTile.objects.filter(layer="nbh.geojson").count() == 1
    again, built = _get(town.client("commissioner"), "neighborhoods.geojson")  # shared by every reader
    assert (again, built) == (first, 0)

    factories.household(town.municipality, at=factories.centre(town.neighborhood))
    after_household, built = _get(client, "neighborhoods.geojson")
    assert built == 1
    code = town.neighborhood.code
    assert _counts(after_household)[code] == _counts(first)[code] + 1

    town.neighborhood.name = "改名後の自治会"
    town.neighborhood.save()
    renamed, built = _get(client, "neighborhoods.geojson")
    assert built == 1 and renamed["features"][0]["properties"]["name"] == "改名後の自治会"
    assert CachedTile.objects.filter(layer="nbh.geojson").count() == 1  # replaced, not added


def test_a_view_is_never_kept(town):
    x0, y0, x1, y1 = town.neighborhood.geom.extent
    _fc, built = _get(town.client("supervisor"), f"neighborhoods.geojson?bbox={x0},{y0},{x1},{y1}")
    assert built == 1
    assert not CachedTile.objects.filter(layer="nbh.geojson").exists()


def test_the_map_geojson_is_kept_until_the_coverage_is_refreshed(mapped):
    campaign = mapped.town.campaign
    client = mapped.client("coordinator")
    path = f"maps/neighborhoods.geojson?campaign={campaign.id}"
    first, built = _get(client, path)
    assert built == 1
    again, built = _get(client, path)
    assert (again, built) == (first, 0)

    visit = factories.scheduled_visit(campaign, mapped.households["new"], mapped.town.users["outreach_worker"],
                                      campaign.start_date)
    visits.record_outcome(visit=visit, outcome="met")
    refresh_coverage(campaign.pk)
    after, built = _get(client, path)
    assert built == 1
    met = {f["id"]: f["properties"]["met"] for f in after["features"]}
    assert met[mapped.town.neighborhood.id] == {f["id"]: f["properties"]["met"] for f in first["features"]}[
        mapped.town.neighborhood.id] + 1


@pytest.mark.parametrize("path", ["neighborhoods.geojson", "maps/neighborhoods.geojson"])
def test_another_municipality_never_gets_the_kept_answer(town, other_town, path):
    mine, _ = _get(town.client("coordinator"), path)
    theirs, built = _get(other_town.client("coordinator"), path)
    assert built == 1
    assert {f["id"] for f in mine["features"]}.isdisjoint({f["id"] for f in theirs["features"]})


def test_the_resources_geojson_is_kept_until_a_resource_changes(town):
    client = town.client("coordinator")
    factories.resource(town.municipality, at=factories.centre(town.neighborhood), name="サロン東")
    first, built = _get(client, "maps/resources.geojson")
    assert built == 1
    again, built = _get(client, "maps/resources.geojson")
    assert (again, built) == (first, 0)
    factories.resource(town.municipality, at=factories.centre(town.neighborhood), name="サロン西")
    after, built = _get(client, "maps/resources.geojson")
    assert built == 1
    assert len(after["features"]) == len(first["features"]) + 1


def test_the_map_bounds_are_kept_until_a_neighborhood_changes(town):
    """The map page's first view (the 自治会' extent, /maps/layers) is read from the kept answer
    until a 自治会 is added or reshaped; another municipality keeps its own."""
    client = town.client("supervisor")

    def bounds() -> tuple[list[float], int]:
        with CaptureQueriesContext(connection) as captured:
            r = client.get("maps/layers")
        assert r.status_code == 200, r.content
        return r.json()["bounds"], sum("ST_Extent" in q["sql"] for q in captured.captured_queries)

    first, built = bounds()
    assert built == 1 and first is not None
    assert bounds() == (first, 0)
    far = factories.neighborhood(town.municipality, code="FAR1", geom=factories.square(first[2] + 0.5, first[3] + 0.5))
    moved, built = bounds()
    assert built == 1
    assert moved[2] >= far.geom.extent[2] - 1e-6 and moved[3] >= far.geom.extent[3] - 1e-6 and moved[2] > first[2]
    assert CachedTile.objects.filter(layer="bounds").count() == 1
