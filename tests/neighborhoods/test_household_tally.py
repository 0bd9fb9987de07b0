"""The household count of each 自治会 (HouseholdTally, kept by triggers on neighborhoods_household)
always equals counting the households, whatever wrote them: the service, a bulk insert, a move
between 自治会, a merge, a delete, the spatial reassignment, a 自治会 deleted; and the lists and
GeoJSON that show it read the tally."""

import random

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Count

from backend import tenancy
from neighborhoods.models import Household, HouseholdTally, Neighborhood
from neighborhoods.services import assign_households
from tests import factories


def counted(municipality_id: int) -> dict[int, int]:
    """The truth: households not merged, per 自治会, counted now."""
    rows = (Household.objects.filter(municipality_id=municipality_id, merged_into__isnull=True,
                                     neighborhood__isnull=False)
            .values("neighborhood_id").annotate(n=Count("pk")))
    return {r["neighborhood_id"]: r["n"] for r in rows}


def tallied(municipality_id: int) -> dict[int, int]:
    """The tallies, leaving out 自治会 that have none now (a tally may stay at 0)."""
    rows = HouseholdTally.objects.filter(municipality_id=municipality_id).values_list("neighborhood_id", "households")
    return {hood: n for hood, n in rows if n}


@pytest.fixture
def three_hoods(town):
    first = town.neighborhood
    lon, lat = first.geom.extent[:2]
    second = factories.neighborhood(town.municipality, name="東園", geom=factories.square(lon + 0.01, lat))
    third = factories.neighborhood(town.municipality, name="西園", geom=factories.square(lon - 0.01, lat))
    return [first, second, third]


def test_the_service_and_a_bulk_insert_are_counted(town, three_hoods):
    _, second, third = three_hoods
    factories.household(town.municipality, at=factories.centre(second))
    Household.objects.bulk_create([
        Household(municipality=town.municipality, external_id=f"B{i}", address=f"一括{i}", neighborhood=third)
        for i in range(25)
    ])
    assert tallied(town.municipality.id) == counted(town.municipality.id)
    assert tallied(town.municipality.id)[third.id] == 25


def test_moves_merges_deletes_and_reassignment_keep_the_tally_exact(town, three_hoods):
    """A seeded random walk of every kind of write; after each step the tally is the count."""
    rng = random.Random(1502)
    hoods = three_hoods
    mid = town.municipality.id
    made = [factories.household(town.municipality, at=factories.centre(rng.choice(hoods))) for _ in range(30)]
    assert tallied(mid) == counted(mid)
    for step in range(40):
        live = list(Household.objects.filter(municipality_id=mid, merged_into__isnull=True))
        kind = rng.choice(["move", "unassign", "merge", "delete", "reassign", "bulk_move"])
        victim = rng.choice(live)
        if kind == "move":
            Household.objects.filter(pk=victim.pk).update(neighborhood=rng.choice(hoods))
        elif kind == "unassign":
            Household.objects.filter(pk=victim.pk).update(neighborhood=None)
        elif kind == "merge":
            into = rng.choice([h for h in live if h.pk != victim.pk])
            Household.objects.filter(pk=victim.pk).update(merged_into=into, neighborhood=None, location=None)
        elif kind == "delete" and not victim.merged_households.exists():
            victim.delete()
        elif kind == "reassign":  # points decide again (moves back what "move" put elsewhere)
            assign_households(municipality_id=mid)
        elif kind == "bulk_move":
            Household.objects.filter(municipality_id=mid, neighborhood=rng.choice(hoods)).update(
                neighborhood=rng.choice(hoods))
        assert tallied(mid) == counted(mid), f"step {step}: {kind}"
    assert sum(counted(mid).values()) > 0, "the walk emptied the town: it tested too little"
    assert len(made) == 30


def test_an_update_that_moves_nobody_writes_no_tally(town, three_hoods):
    h = factories.household(town.municipality, at=factories.centre(three_hoods[1]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM neighborhoods_householdtally WHERE neighborhood_id = %s", [three_hoods[1].id])
        before = cursor.fetchone()[0]
        Household.objects.filter(pk=h.pk).update(address="北栄町東園99", status="vacant")
        cursor.execute("SELECT xmin::text FROM neighborhoods_householdtally WHERE neighborhood_id = %s", [three_hoods[1].id])
        assert cursor.fetchone()[0] == before


def test_a_deleted_neighborhood_takes_its_tally_and_frees_its_households(town, three_hoods):
    _, second, _ = three_hoods
    kept = factories.household(town.municipality, at=factories.centre(second))
    Neighborhood.objects.filter(pk=second.pk).delete()
    assert not HouseholdTally.objects.filter(neighborhood_id=second.pk).exists()
    kept.refresh_from_db()
    assert kept.neighborhood_id is None
    assert tallied(town.municipality.id) == counted(town.municipality.id)


def test_another_municipality_is_counted_apart(town, other_town):
    before = {}
    for place in (town, other_town):
        with tenancy.scope(place.municipality.id):
            before[place.municipality.id] = counted(place.municipality.id).get(place.neighborhood.id, 0)
    factories.household(other_town.municipality, at=factories.centre(other_town.neighborhood))
    factories.household(other_town.municipality, at=factories.centre(other_town.neighborhood))
    factories.household(town.municipality, at=factories.centre(town.neighborhood))
    for place, added in ((town, 1), (other_town, 2)):
        with tenancy.scope(place.municipality.id):
            assert tallied(place.municipality.id) == counted(place.municipality.id)
            assert tallied(place.municipality.id)[place.neighborhood.id] == before[place.municipality.id] + added
            assert set(HouseholdTally.objects.values_list("municipality_id", flat=True)) == {place.municipality.id}


def test_lists_and_geojson_show_the_tally(town, three_hoods):
    first, second, third = three_hoods
    for hood, n in ((first, 2), (second, 3)):
        for _ in range(n):
            factories.household(town.municipality, at=factories.centre(hood))
    survivor, absorbed = Household.objects.filter(neighborhood=second)[:2]
    Household.objects.filter(pk=absorbed.pk).update(merged_into=survivor, neighborhood=None, location=None)
    client = town.client("coordinator")
    hoods = {n["id"]: n["household_count"] for n in client.get("neighborhoods").json()["items"]}
    truth = counted(town.municipality.id)
    assert hoods == {hood.id: truth.get(hood.id, 0) for hood in three_hoods}
    assert (hoods[second.id], hoods[third.id]) == (2, 0)  # 3 made, 1 merged away
    geo = client.get("neighborhoods.geojson").json()
    assert {f["id"]: f["properties"]["household_count"] for f in geo["features"]} == hoods
    areas = client.get("daily-life-areas").json()["items"]
    by_area: dict = {}
    for hood in (first, second, third):
        hood.refresh_from_db()
        if hood.daily_life_area_id:
            by_area[hood.daily_life_area_id] = by_area.get(hood.daily_life_area_id, 0) + hoods[hood.id]
    assert {a["id"]: a["household_count"] for a in areas if a["id"] in by_area} == by_area


def test_a_household_without_a_point_is_counted_once_placed(town, three_hoods):
    h = factories.household(town.municipality)
    assert h.neighborhood_id is None
    before = tallied(town.municipality.id)
    Household.objects.filter(pk=h.pk).update(location=Point(*factories.centre(three_hoods[2]), srid=4326))
    assign_households(municipality_id=town.municipality.id, household_ids=[h.pk])
    assert tallied(town.municipality.id) == {**before, three_hoods[2].id: 1}
