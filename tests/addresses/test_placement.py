"""Households placed from their address at the finest level the reference has; unchanged data
writes nothing on a second run."""

import pytest
from django.contrib.gis.geos import Point
from django.db import connection

from addresses.models import AddressReference
from addresses.placement import place_households
from neighborhoods.importers.households import import_households
from neighborhoods.models import Household, Municipality
from tests import factories

LON, LAT = 133.75, 35.49


@pytest.fixture
def muni(db):
    town = Municipality.objects.create(code="313726", name="北栄町", prefecture="鳥取県")
    for level, town_key, block, residence, dx in [
        ("residence", "中央3丁目", "5", "12", 0.0001),
        ("block", "中央3丁目", "5", "", 0.0002),
        ("block", "西園", "521", "", 0.0003),
        ("town", "中央3丁目", "", "", 0.0004),
        ("town", "西園", "", "", 0.0005),
        ("town", "由良宿", "", "", 0.0006),
    ]:
        AddressReference.objects.create(
            municipality=town, level=level, town=town_key, block=block, residence=residence,
            location=Point(LON + dx, LAT, srid=4326), source="mlit_town",
        )
    return town


ADDRESSES = {
    "H1": ("鳥取県東伯郡北栄町中央三丁目5番12号", "residence", 0.0001),
    "H2": ("中央3-5-8", "block", 0.0002),  # no such 住居: its 街区
    "H3": ("大字西園５２１番地１", "block", 0.0003),  # 地番 521's point
    "H4": ("北栄町由良宿１２３", "town", 0.0006),  # no 地番 points in 由良宿: the 大字
    "H5": ("中央三丁目9番1号 コーポ山田201号", "town", 0.0004),
    "H6": ("北町9-9", "unmatched", None),
}


def _households_csv(tmp_path, rows):
    path = tmp_path / "households.csv"
    path.write_text("external_id,address\n" + "".join(f"{k},{a}\n" for k, a in rows), encoding="utf-8")
    return path


def _state(muni) -> dict:
    return {
        h.external_id: (h.match_level, None if h.location is None else round(h.location.x - LON, 7))
        for h in Household.objects.filter(municipality=muni)
    }


def _xmins(muni) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT external_id, xmin::text FROM neighborhoods_household WHERE municipality_id = %s", [muni.pk])
        return dict(cursor.fetchall())


def test_households_imported_with_addresses_only_are_placed_at_the_finest_level(tmp_path, muni):
    import_households(municipality=muni, path=_households_csv(tmp_path, [(k, a) for k, (a, _l, _d) in ADDRESSES.items()]))
    result = place_households(municipality_id=muni.pk)
    assert _state(muni) == {k: (level, dx) for k, (_a, level, dx) in ADDRESSES.items()}
    assert result.placed["residence"] == 1 and result.placed["block"] == 2 and result.placed["town"] == 2
    assert result.unmatched == 1
    h5 = Household.objects.get(municipality=muni, external_id="H5")
    assert h5.address_normalized == "中央3丁目9-1 コーポ山田201号"


def test_a_second_run_writes_nothing(tmp_path, muni):
    for external_id, (address, _level, _dx) in ADDRESSES.items():
        factories.household(muni, external_id=external_id, address=address)
    place_households(municipality_id=muni.pk)
    before = (_xmins(muni), Household.pgh_event_model.objects.count())
    again = place_households(municipality_id=muni.pk)
    assert again.changed == {} and again.normalized_only == 0
    assert (_xmins(muni), Household.pgh_event_model.objects.count()) == before


def test_a_placed_household_gets_one_new_version(muni):
    household = factories.household(muni, address="中央三丁目5番12号")
    place_households(municipality_id=muni.pk)
    household.refresh_from_db()
    assert (household.match_level, household.version) == ("residence", 2)


def test_given_points_stay_and_their_address_is_normalised(muni):
    given = factories.household(muni, address="中央３丁目５－１２", at=(133.70, 35.40))
    Household.objects.filter(pk=given.pk).update(match_level="coordinates")
    place_households(municipality_id=muni.pk)
    given.refresh_from_db()
    assert (given.match_level, given.location.x, given.version) == ("coordinates", 133.70, 1)
    assert given.address_normalized == "中央3丁目5-12"


def test_merged_households_are_never_placed(muni):
    keep = factories.household(muni, address="中央三丁目5番12号")
    gone = factories.household(muni, address="中央三丁目5番12号")
    Household.objects.filter(pk=gone.pk).update(merged_into=keep)
    place_households(municipality_id=muni.pk)
    gone.refresh_from_db()
    assert (gone.location, gone.match_level, gone.address_normalized) == (None, "unmatched", "")


def test_a_manual_point_stays_until_the_address_changes(muni):
    household = factories.household(muni, address="北町9-9")
    Household.objects.filter(pk=household.pk).update(
        match_level="manual", location=Point(133.71, 35.41, srid=4326), address_normalized="北町9-9",
    )
    place_households(municipality_id=muni.pk)
    household.refresh_from_db()
    assert (household.match_level, household.location.x) == ("manual", 133.71)
    # the household moved: the manual point is stale, the new address is matched
    Household.objects.filter(pk=household.pk).update(address="西園521-1")
    place_households(municipality_id=muni.pk)
    household.refresh_from_db()
    assert (household.match_level, round(household.location.x - LON, 7)) == ("block", 0.0003)


def test_a_matched_household_whose_address_no_longer_matches_loses_its_point(muni):
    household = factories.household(muni, address="由良宿1")
    place_households(municipality_id=muni.pk)
    Household.objects.filter(pk=household.pk).update(address="北町1")
    result = place_households(municipality_id=muni.pk)
    household.refresh_from_db()
    assert (household.match_level, household.location) == ("unmatched", None)
    assert result.changed == {"unmatched": 1}


def test_reimporting_the_same_households_writes_nothing(tmp_path, muni):
    """End to end through the household importer (which places after its merge)."""
    path = _households_csv(tmp_path, [(k, a) for k, (a, _l, _d) in ADDRESSES.items()])
    import_households(municipality=muni, path=path)
    place_households(municipality_id=muni.pk)
    before = (_xmins(muni), Household.pgh_event_model.objects.count())
    import_households(municipality=muni, path=path)
    place_households(municipality_id=muni.pk)
    assert (_xmins(muni), Household.pgh_event_model.objects.count()) == before


def test_placements_for_an_importer_agree_with_place_households(muni):
    from addresses.placement import placements_for

    found = placements_for(municipality=muni, addresses=[a for a, _l, _d in ADDRESSES.values()])
    assert {a: (p.level, None if p.point is None else round(p.point[0] - LON, 7)) for a, p in found.items()} == {
        a: (level, dx) for a, level, dx in ADDRESSES.values()
    }
    assert found["中央3-5-8"].normalized == "中央3丁目5-8"
