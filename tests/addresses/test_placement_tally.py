"""The placement summary's tallies (MatchLevelTally, ReferenceLevelTally, kept by triggers: addresses
0002) always equal counting the rows, whatever wrote them: the service, bulk inserts, updates of a
match level one by one or in bulk, merges (the service and a bare UPDATE), deletes, reference points
loaded, moved between levels and removed; and the summary a coordinator or supervisor reads is the
tally, not a count of the town's households."""

import random

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from addresses.models import AddressReference, MatchLevelTally, ReferenceLevel, ReferenceLevelTally
from backend import tenancy
from neighborhoods.merging import merge_households
from neighborhoods.models import Household, MatchLevel
from tests import factories

LEVELS = MatchLevel.values


def counted(municipality_id: int) -> dict[str, int]:
    """The truth: households not merged, per match level, counted now."""
    rows = (Household.objects.filter(municipality_id=municipality_id, merged_into__isnull=True)
            .values("match_level").annotate(n=Count("pk")))
    return {r["match_level"]: r["n"] for r in rows if r["n"]}


def tallied(municipality_id: int) -> dict[str, int]:
    rows = MatchLevelTally.objects.filter(municipality_id=municipality_id).values_list("match_level", "households")
    return {level: n for level, n in rows if n}


def references_counted(municipality_id: int) -> dict[str, int]:
    rows = AddressReference.objects.filter(municipality_id=municipality_id).values("level").annotate(n=Count("pk"))
    return {r["level"]: r["n"] for r in rows if r["n"]}


def references_tallied(municipality_id: int) -> dict[str, int]:
    rows = ReferenceLevelTally.objects.filter(municipality_id=municipality_id).values_list("level", "points")
    return {level: n for level, n in rows if n}


def _reference(municipality, n: int, level: str) -> AddressReference:
    keys = {"town": {}, "block": {"block": "1"}, "residence": {"block": "1", "residence": "2"}}[level]
    return AddressReference(municipality=municipality, level=level, town=f"参照町{n}", location=Point(134.2, 35.5, srid=4326),
                            source="mlit_block", **keys)


def test_a_seeded_random_walk_of_every_kind_of_write_keeps_both_tallies_exact(town, other_town):
    rng = random.Random(1505)
    mid, municipality = town.municipality.id, town.municipality
    coordinator = town.users["coordinator"]
    at = factories.centre(town.neighborhood)
    factories.household(other_town.municipality)  # another town's writes are counted apart
    kept = set(Household.objects.filter(municipality_id=mid).values_list("pk", flat=True))  # the fixture's, with visits
    for _ in range(12):
        factories.household(municipality, at=at if rng.random() < 0.5 else None)
    serial = 0
    kinds = ["create", "bulk_insert", "set_level", "bulk_level", "merge", "bare_merge", "delete", "unmerge_guard",
             "ref_insert", "ref_bulk", "ref_move", "ref_delete", "noop"]
    for step in range(60):
        live = list(Household.objects.filter(municipality_id=mid, merged_into__isnull=True))
        kind = rng.choice(kinds)
        victim = rng.choice(live)
        if kind == "create":
            factories.household(municipality, at=at if rng.random() < 0.5 else None)
        elif kind == "bulk_insert":
            Household.objects.bulk_create([
                Household(municipality=municipality, external_id=f"B{step}-{i}", address=f"一括{i}",
                          match_level=rng.choice(LEVELS)) for i in range(rng.randint(1, 8))
            ])
        elif kind == "set_level":
            Household.objects.filter(pk=victim.pk).update(match_level=rng.choice(LEVELS))
        elif kind == "bulk_level":
            Household.objects.filter(municipality_id=mid, match_level=rng.choice(LEVELS)).update(
                match_level=rng.choice(LEVELS))
        elif kind == "merge" and len(live) > 1:
            into = rng.choice([h for h in live if h.pk != victim.pk])
            merge_households(survivor=into, absorbed=victim, by=coordinator, survivor_version=into.version,
                             absorbed_version=victim.version)
        elif kind == "bare_merge" and len(live) > 1:
            into = rng.choice([h for h in live if h.pk != victim.pk])
            Household.objects.filter(pk=victim.pk).update(merged_into=into, match_level=rng.choice(LEVELS))
        elif kind == "delete" and victim.pk not in kept and not victim.merged_households.exists():
            Household.objects.filter(pk=victim.pk).delete()
        elif kind == "unmerge_guard":  # an update touching merged households only: they stay uncounted
            Household.objects.filter(municipality_id=mid, merged_into__isnull=False).update(match_level="manual")
        elif kind == "ref_insert":
            serial += 1
            _reference(municipality, serial, rng.choice(ReferenceLevel.values)).save()
        elif kind == "ref_bulk":
            batch = []
            for _ in range(rng.randint(1, 6)):
                serial += 1
                batch.append(_reference(municipality, serial, rng.choice(ReferenceLevel.values)))
            AddressReference.objects.bulk_create(batch)
        elif kind == "ref_move":  # a residence point re-read as its block's
            AddressReference.objects.filter(municipality_id=mid, level="residence").update(level="block", residence="")
        elif kind == "ref_delete":
            points = list(AddressReference.objects.filter(municipality_id=mid).order_by("pk").values_list("pk", flat=True))
            AddressReference.objects.filter(pk__in=rng.sample(points, min(2, len(points)))).delete()
        else:
            Household.objects.filter(pk=victim.pk).update(address="由良宿1", status="vacant")
        assert tallied(mid) == counted(mid), f"step {step}: {kind}"
        assert references_tallied(mid) == references_counted(mid), f"step {step}: {kind}"
    with tenancy.scope(other_town.municipality.id):
        assert tallied(other_town.municipality.id) == counted(other_town.municipality.id)
    assert sum(counted(mid).values()) > 5 and references_counted(mid), "the walk tested too little"


def test_an_update_that_changes_no_level_writes_no_tally(town):
    h = factories.household(town.municipality)
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM addresses_matchleveltally WHERE municipality_id = %s", [town.municipality.id])
        before = sorted(r[0] for r in cursor.fetchall())
        Household.objects.filter(pk=h.pk).update(address="北栄町東園99", status="vacant")
        cursor.execute("SELECT xmin::text FROM addresses_matchleveltally WHERE municipality_id = %s", [town.municipality.id])
        assert sorted(r[0] for r in cursor.fetchall()) == before


@pytest.mark.parametrize("role", ["coordinator", "supervisor"])
def test_the_summary_reads_the_tallies_and_equals_the_live_count(town, other_town, role):
    for k, level in enumerate(("block", "town", "unmatched", "unmatched")):
        Household.objects.bulk_create([Household(municipality=town.municipality, external_id=f"S-{k}-{n}",
                                                 address="どこか", match_level=level) for n in range(2)])
    AddressReference.objects.bulk_create([_reference(town.municipality, n, level)
                                          for n, level in enumerate(["town", "block", "block", "residence"])])
    a, b = Household.objects.filter(municipality=town.municipality, match_level="block")[:2]
    Household.objects.filter(pk=a.pk).update(merged_into=b)
    factories.household(other_town.municipality, address="どこか1")
    client = town.client(role)
    with CaptureQueriesContext(connection) as queries:
        r = client.get("households/placement-summary")
    assert r.status_code == 200, r.content
    assert not [q["sql"] for q in queries if "neighborhoods_household" in q["sql"]], "the summary counted households"
    truth = counted(town.municipality.id)
    expected = {level: truth.get(level, 0) for level in LEVELS}
    assert r.json()["households"] == {**expected, "total": sum(expected.values())}
    assert expected["block"] >= 1 and expected["unmatched"] >= 4
    assert r.json()["references"] == {"residence": 1, "block": 2, "town": 1}
