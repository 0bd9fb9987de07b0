"""import_households / import_resources against a real PostGIS: encodings, coordinates, validation,
upsert, residents, 自治会 assignment, dry runs and the demo files."""

import csv
import io
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from neighborhoods.models import CommunityResource, Household, Resident
from tests import factories

HOUSEHOLD_HEADER = ["external_id", "address", "address_kana", "lat", "lon", "status", "living_arrangement", "risk_flags", "neighborhood_code"]
RESIDENT_HEADER = ["household_external_id", "name", "kana", "birth_year", "relation", "flags"]
RESOURCE_HEADER = ["name", "type", "lat", "lon", "opening_days", "neighborhood_code"]
DEMO = Path(settings.BASE_DIR) / "fixtures" / "hokuei"

# Two households of the Hokuei model; the CP932 one has characters Shift_JIS proper lacks (髙, ①).
H1 = ["H1", "鳥取県東伯郡北栄町由良宿123-4", "トットリケントウハクグンホクエイチョウユラシュク123-4", "35.505", "133.745", "occupied", "family", "8050;hikikomori", "HK03"]
H2 = ["H2", "鳥取県東伯郡北栄町髙江①5", "トットリケントウハクグンホクエイチョウタカエ5", "35.485", "133.705", "vacant", "", "", "HK19"]


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8") -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n" if encoding == "cp932" else "\n").writerows([header, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run(command: str, *args: str, **options) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=out, **options)
    return out.getvalue()


@pytest.fixture
def town(db):
    # Named as the test addresses name it: an address in another municipality is refused.
    town = factories.municipality()
    town.name = "北栄町"
    town.save(update_fields=["name"])
    return town


@pytest.fixture
def households_csv(tmp_path):
    return write_csv(tmp_path / "households.csv", HOUSEHOLD_HEADER, [H1, H2])


def versions(town) -> dict[str, tuple]:
    return {h.external_id: (h.pk, h.version, h.updated_at) for h in Household.objects.filter(municipality=town)}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_file_with_or_without_bom(town, tmp_path, encoding):
    path = write_csv(tmp_path / "households.csv", HOUSEHOLD_HEADER, [H1, H2], encoding=encoding)

    out = run("import_households", str(path), municipality=town.code)

    assert "households: 2 created, 0 updated, 0 unchanged, 0 skipped" in out
    h1 = Household.objects.get(municipality=town, external_id="H1")
    assert h1.address == "鳥取県東伯郡北栄町由良宿123-4"
    assert h1.address_kana.startswith("トットリケン")
    assert (h1.location.x, h1.location.y) == (133.745, 35.505)
    assert h1.location.srid == 4326
    assert (h1.status, h1.living_arrangement, h1.risk_flags) == ("occupied", "family", ["8050", "hikikomori"])
    assert Household.objects.get(external_id="H2").address == "鳥取県東伯郡北栄町髙江①5"
    # the history rows say where the write came from
    # (the import's row, then placement's, which records the normalised address; both share the
    # transaction's one pghistory context, whose command the innermost step names)
    history = apps.get_model("neighborhoods", "HouseholdHistory").objects.filter(pgh_obj_id=h1.pk).order_by("pgh_id")
    contexts = [e.pgh_context.metadata for e in history]
    assert contexts and all(c["file"] == "households.csv" for c in contexts)
    assert {c["command"] for c in contexts} <= {"import_households", "place_households"}


def test_cp932_file_is_detected(town, tmp_path):
    path = write_csv(tmp_path / "households.csv", HOUSEHOLD_HEADER, [H1, H2], encoding="cp932")

    out = run("import_households", str(path), municipality=town.code)

    assert "(cp932)" in out
    assert Household.objects.get(municipality=town, external_id="H2").address == "鳥取県東伯郡北栄町髙江①5"


@pytest.mark.parametrize("forced", ["cp932", "shift_jis"])
def test_forced_shift_jis_reads_cp932_characters(town, tmp_path, forced):
    path = write_csv(tmp_path / "households.csv", HOUSEHOLD_HEADER, [H1, H2], encoding="cp932")

    run("import_households", str(path), municipality=town.code, encoding=forced)

    assert Household.objects.get(municipality=town, external_id="H2").address == "鳥取県東伯郡北栄町髙江①5"


def test_wrong_forced_encoding_names_the_line(town, tmp_path):
    path = write_csv(tmp_path / "households.csv", HOUSEHOLD_HEADER, [H1, H2], encoding="cp932")

    with pytest.raises(CommandError, match=r"households\.csv:2: cannot be read as utf-8"):
        run("import_households", str(path), municipality=town.code, encoding="utf-8")
    assert not Household.objects.exists()


def test_plane_rectangular_xy_is_transformed_to_lon_lat(town, tmp_path):
    with connection.cursor() as cursor:  # a Hokuei point, in JGD2011 / zone V by PostGIS
        cursor.execute("SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(133.74, 35.49), 4326), 6673) p")
        easting, northing = cursor.fetchone()
    rows = [
        ["P1", "原点", str(easting), str(northing)],
        ["P0", "系の原点", "０", "０．０"],  # zone V's origin is 36°N 134°20'E (full-width, as typed in Excel)
        ["PN", "原点の10km北", "0", "10000"],  # on the central meridian: the longitude stays 134°20'E
    ]
    path = write_csv(tmp_path / "plane.csv", ["external_id", "address", "easting", "northing"], rows)

    run("import_households", str(path), municipality=town.code, srid=6673, x_field="easting", y_field="northing")

    located = {h.external_id: h.location for h in Household.objects.filter(municipality=town)}
    assert located["P1"].x == pytest.approx(133.74, abs=1e-6)
    assert located["P1"].y == pytest.approx(35.49, abs=1e-6)
    assert (located["P0"].x, located["P0"].y) == (pytest.approx(134 + 1 / 3, abs=1e-6), pytest.approx(36, abs=1e-6))
    assert located["PN"].x == pytest.approx(134 + 1 / 3, abs=1e-6)
    assert located["PN"].y == pytest.approx(36.09, abs=0.001)


def test_unknown_srid_is_refused(town, households_csv):
    with pytest.raises(CommandError, match="EPSG:999999 is not a known spatial reference system"):
        run("import_households", str(households_csv), municipality=town.code, srid=999999, x_field="lon", y_field="lat")


def test_lat_field_with_another_srid_is_refused(town, households_csv):
    with pytest.raises(CommandError, match="use --x-field and --y-field"):
        run("import_households", str(households_csv), municipality=town.code, srid=6673, lat_field="lat")


def test_bad_rows_are_all_reported_with_line_numbers_and_nothing_is_written(town, tmp_path):
    rows = [
        H1,
        ["H2", "北栄町2", "", "abc", "133.7", "occupied", "", "", ""],
        ["H3", "北栄町3", "", "95", "133.7", "gone", "family", "8050;rich", ""],
        ["H1", "北栄町4", "", "", "", "", "", "", ""],
        ["H5", "", "", "35.5", "", "", "", "", ""],
    ]
    path = write_csv(tmp_path / "households.csv", HOUSEHOLD_HEADER, rows)

    with pytest.raises(CommandError) as excinfo:
        run("import_households", str(path), municipality=town.code)

    message = str(excinfo.value)
    assert "7 problems, nothing was written" in message
    for expected in [
        "households.csv:3: lat: 'abc' is not a number",
        "households.csv:4: lat: 95 is out of range (latitude -90..90)",
        "households.csv:4: status: 'gone' is not one of occupied, vacant, moved, unknown",
        "households.csv:4: risk_flags: 'rich' is not one of 8050,",
        "households.csv:5: external_id: 'H1' is already on line 2",
        "households.csv:6: address: is required",
        "households.csv:6: lon: is missing (the other coordinate is given)",
    ]:
        assert expected in message
    assert not Household.objects.filter(municipality=town).exists()


def test_many_errors_are_capped(town, tmp_path):
    rows = [[f"H{i}", f"北栄町{i}", "", "north", "133.7"] for i in range(60)]
    path = write_csv(tmp_path / "households.csv", ["external_id", "address", "address_kana", "lat", "lon"], rows)

    with pytest.raises(CommandError) as excinfo:
        run("import_households", str(path), municipality=town.code)

    message = str(excinfo.value)
    assert "households.csv:51: lat: 'north' is not a number" in message
    assert "households.csv:52:" not in message
    assert "… and 10 more" in message


def test_missing_column_is_refused(town, tmp_path):
    path = write_csv(tmp_path / "households.csv", ["external_id", "lat", "lon"], [["H1", "35.5", "133.7"]])

    with pytest.raises(CommandError, match=r"households\.csv:1: missing column\(s\): address"):
        run("import_households", str(path), municipality=town.code)


def test_unknown_municipality_is_refused(db, households_csv):
    with pytest.raises(CommandError, match="No municipality with code '999999'"):
        run("import_households", str(households_csv), municipality="999999")


def test_skip_invalid_writes_the_good_rows_and_reports_the_others(town, tmp_path):
    rows = [H1, ["H2", "北栄町2", "", "abc", "133.7", "", "", "", ""], ["H3", "北栄町3", "", "", "", "", "", "", ""]]
    path = write_csv(tmp_path / "households.csv", HOUSEHOLD_HEADER, rows)
    residents = write_csv(tmp_path / "residents.csv", RESIDENT_HEADER, [
        ["H1", "田中 秀樹", "タナカ ヒデキ", "1981", "head", ""],
        ["H2", "山田 花子", "ヤマダ ハナコ", "1950", "head", ""],
    ])

    out = run("import_households", str(path), municipality=town.code, residents=str(residents), skip_invalid=True)

    assert sorted(Household.objects.filter(municipality=town).values_list("external_id", flat=True)) == ["H1", "H3"]
    assert "households: 2 created, 0 updated, 0 unchanged, 1 skipped" in out
    assert "residents (residents.csv): 1 created, 0 updated, 0 unchanged, 1 skipped" in out
    assert "households.csv:3: lat: 'abc' is not a number" in out
    assert "residents.csv:3: household_external_id: 'H2': its row was rejected (households.csv:3)" in out


def test_reimport_is_idempotent_and_updates_in_place(town, tmp_path, households_csv):
    run("import_households", str(households_csv), municipality=town.code)
    before = versions(town)

    out = run("import_households", str(households_csv), municipality=town.code)

    assert "households: 0 created, 0 updated, 2 unchanged, 0 skipped" in out
    assert versions(town) == before

    changed = [[H1[0], "鳥取県東伯郡北栄町由良宿999", *H1[2:]], H2]
    out = run("import_households", str(write_csv(tmp_path / "v2.csv", HOUSEHOLD_HEADER, changed)), municipality=town.code)

    after = versions(town)
    assert "households: 0 created, 1 updated, 1 unchanged, 0 skipped" in out
    assert after["H1"][0] == before["H1"][0] and after["H1"][1] == before["H1"][1] + 1
    assert after["H2"] == before["H2"]
    assert Household.objects.get(external_id="H1").address == "鳥取県東伯郡北栄町由良宿999"


def test_residents_are_linked_and_updated_by_name(town, tmp_path, households_csv):
    residents = [
        ["H1", "田中 秀樹", "タナカ ヒデキ", "1945", "head", "care_need"],
        ["H1", "田中 蒼", "タナカ アオイ", "1975", "child", "hikikomori"],
    ]
    path = write_csv(tmp_path / "residents.csv", RESIDENT_HEADER, residents)
    out = run("import_households", str(households_csv), municipality=town.code, residents=str(path))

    assert "residents (residents.csv): 2 created, 0 updated, 0 unchanged, 0 skipped" in out
    head = Resident.objects.get(household__external_id="H1", name="田中 秀樹")
    assert (head.municipality_id, head.relation, head.birth_year, head.flags) == (town.pk, "head", 1945, ["care_need"])
    assert head.age_band == "75_plus"
    assert Resident.objects.get(name="田中 蒼").age_band == "40_64"

    residents[0][5] = "care_need;dementia"
    out = run("import_households", str(households_csv), municipality=town.code,
              residents=str(write_csv(tmp_path / "residents2.csv", RESIDENT_HEADER, residents)))

    assert "residents (residents2.csv): 0 created, 1 updated, 1 unchanged, 0 skipped" in out
    again = Resident.objects.get(household__external_id="H1", name="田中 秀樹")
    assert (again.pk, again.version, again.flags) == (head.pk, head.version + 1, ["care_need", "dementia"])
    assert Resident.objects.filter(municipality=town).count() == 2


def test_residents_with_one_name_in_a_household_are_kept_apart(town, tmp_path, households_csv):
    # A mother and daughter of one name, and twins listed twice (as the demo file has them).
    residents = [
        ["H1", "福田 美咲", "フクダ ミサキ", "1970", "head", ""],
        ["H1", "福田 美咲", "フクダ ミサキ", "2000", "child", ""],
        ["H1", "福田 湊", "フクダ ミナト", "2024", "child", ""],
        ["H1", "福田 湊", "フクダ ミナト", "2024", "child", ""],
    ]
    first = write_csv(tmp_path / "r1.csv", RESIDENT_HEADER, residents)
    run("import_households", str(households_csv), municipality=town.code, residents=str(first))
    ids = dict(Resident.objects.filter(name="福田 美咲").values_list("birth_year", "id"))

    # the same people in another order, the daughter now flagged: only she changes
    reordered = [[*residents[1][:5], "disability"], residents[3], residents[0], residents[2]]
    out = run("import_households", str(households_csv), municipality=town.code,
              residents=str(write_csv(tmp_path / "r2.csv", RESIDENT_HEADER, reordered)))

    assert "residents (r2.csv): 0 created, 1 updated, 3 unchanged, 0 skipped" in out
    assert "2 names occur more than once in one household" in out
    assert dict(Resident.objects.filter(name="福田 美咲").values_list("birth_year", "id")) == ids
    assert Resident.objects.get(pk=ids[2000]).flags == ["disability"]
    assert Resident.objects.filter(municipality=town).count() == 4


def test_residents_of_unknown_households_are_errors(town, tmp_path, households_csv):
    path = write_csv(tmp_path / "residents.csv", RESIDENT_HEADER, [
        ["H1", "田中 秀樹", "", "1981", "head", ""],
        ["H9", "佐藤 一郎", "", "1981", "boss", ""],
        ["H1", "田中 蒼", "", "3000", "", ""],
    ])

    with pytest.raises(CommandError) as excinfo:
        run("import_households", str(households_csv), municipality=town.code, residents=str(path))

    message = str(excinfo.value)
    assert "residents.csv:3: household_external_id: 'H9': no such household" in message
    assert "residents.csv:3: relation: 'boss' is not one of head," in message
    assert "residents.csv:4: birth_year: 3000 is out of range" in message
    assert not Household.objects.filter(municipality=town).exists()


def test_households_get_the_neighborhood_that_contains_them_and_the_others_are_listed(town, tmp_path):
    hood = factories.neighborhood(town, geom=factories.square(133.74, 35.50, 0.01))
    rows = [
        ["IN", "北栄町1", "", "35.505", "133.745"],
        ["OUT", "北栄町2", "", "35.60", "133.745"],
        ["NOWHERE", "北栄町3", "", "", ""],
    ]
    path = write_csv(tmp_path / "households.csv", ["external_id", "address", "address_kana", "lat", "lon"], rows)

    out = run("import_households", str(path), municipality=town.code)

    placed = dict(Household.objects.filter(municipality=town).values_list("external_id", "neighborhood"))
    assert placed == {"IN": hood.pk, "OUT": None, "NOWHERE": None}
    assert "households in no 自治会: 2\n  NOWHERE 北栄町3\n  OUT 北栄町2\n" in out


def test_dry_run_writes_nothing(town, households_csv):
    out = run("import_households", str(households_csv), municipality=town.code, dry_run=True)

    assert "households: 2 created" in out
    assert "dry run: nothing was written" in out
    assert not Household.objects.filter(municipality=town).exists()


def test_progress_is_printed_unless_turned_off(town, households_csv):
    assert "households: 2/2 written" in run("import_households", str(households_csv), municipality=town.code)
    quiet = run("import_households", str(households_csv), municipality=town.code, progress=False)
    assert "written" not in quiet and "households: 0 created" in quiet


def test_resources_are_upserted_by_name_and_placed_in_neighborhoods(town, tmp_path):
    hood = factories.neighborhood(town, geom=factories.square(133.74, 35.50, 0.01))
    rows = [
        ["ゆらしゅくサロン", "salon", "35.505", "133.745", "mon;wed;fri", "HK03"],
        ["北条公民館", "community_hall", "35.60", "133.745", "", ""],
    ]
    path = write_csv(tmp_path / "resources.csv", RESOURCE_HEADER, rows, encoding="cp932")

    out = run("import_resources", str(path), municipality=town.code)

    assert "resources 2 created, 0 updated, 0 unchanged, 0 skipped" in out
    assert "resources in no 自治会: 1\n  北条公民館" in out
    salon = CommunityResource.objects.get(municipality=town, name="ゆらしゅくサロン")
    assert (salon.type, salon.opening_days, salon.neighborhood_id) == ("salon", ["mon", "wed", "fri"], hood.pk)

    rows[0][4] = "tue"
    out = run("import_resources", str(write_csv(tmp_path / "r2.csv", RESOURCE_HEADER, rows)), municipality=town.code)

    assert "resources 0 created, 1 updated, 1 unchanged" in out
    assert CommunityResource.objects.get(pk=salon.pk).opening_days == ["tue"]


def test_bad_resources_write_nothing(town, tmp_path):
    rows = [["サロン", "salon", "35.5", "133.7", "monday", ""], ["図書館", "", "", "133.7", "", ""]]
    path = write_csv(tmp_path / "resources.csv", RESOURCE_HEADER, rows)

    with pytest.raises(CommandError) as excinfo:
        run("import_resources", str(path), municipality=town.code)

    message = str(excinfo.value)
    assert "resources.csv:2: opening_days: 'monday' is not one of mon," in message
    assert "resources.csv:3: type: is required" in message
    assert "resources.csv:3: lat: is required" in message
    assert not CommunityResource.objects.filter(municipality=town).exists()


def test_resources_dry_run_writes_nothing(town, tmp_path):
    path = write_csv(tmp_path / "resources.csv", RESOURCE_HEADER, [["サロン", "salon", "35.5", "133.7", "", ""]])

    assert "dry run" in run("import_resources", str(path), municipality=town.code, dry_run=True)
    assert not CommunityResource.objects.filter(municipality=town).exists()


def _data_rows(path: Path, encoding: str = "utf-8") -> int:
    with path.open(encoding=encoding, newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


@pytest.mark.slow
def test_the_demo_list_loads_into_a_town_without_boundaries_or_address_reference(town):
    """The demo's 世帯 list as its town exports it (CP932, Japanese headers, no coordinates), with no
    reference data loaded: every household is kept, unplaced and listed, none is dropped."""
    households, residents = DEMO / "households.csv", DEMO / "residents.csv"
    # as load_demo calls it
    call_command("import_households", str(households), municipality=town.code, residents=str(residents),
                 verbosity=0, progress=False)

    assert Household.objects.filter(municipality=town).count() == _data_rows(households, "cp932") == 5493
    assert Resident.objects.filter(municipality=town).count() == _data_rows(residents) == 12534
    assert not Household.objects.filter(municipality=town, location__isnull=False).exists()
    assert Household.objects.filter(municipality=town, match_level="unmatched").count() == 5493

    out = run("import_households", str(households), municipality=town.code, residents=str(residents), progress=False)
    assert "households: 0 created, 0 updated, 5493 unchanged, 0 skipped" in out
    assert "residents (residents.csv): 0 created, 0 updated, 12534 unchanged, 0 skipped" in out
    assert "households without a point (unmatched): 5493" in out
    assert "households in no 自治会: 5493\n  H00001 " in out
    assert "… and 5473 more" in out
