"""import_boundaries: real files (GeoJSON written here, Shapefiles and GeoPackages made from them by
ogr2ogr), a real PostGIS, no mocks."""

import json
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.gis.gdal import DataSource
from django.contrib.gis.geos import GEOSGeometry, Point
from django.core.management import call_command
from django.core.management.base import CommandError

from neighborhoods.importers.boundaries import BoundaryImportResult, FieldNames, import_boundaries
from neighborhoods.models import DailyLifeArea, District, Household, Municipality, Neighborhood
from tests import factories

DEMO = Path(settings.BASE_DIR) / "fixtures" / "hokuei" / "neighborhoods.geojson"
# 北栄町 lies around 133.74 E, 35.49 N: a longitude above 90 is the easy tell of a lon/lat swap.
LON, LAT = 133.74, 35.49


@pytest.fixture
def hokuei(db) -> Municipality:
    return factories.municipality("313726", name="北栄町")


def rect(west: float, south: float, east: float, north: float) -> list[list[list[float]]]:
    """A GeoJSON Polygon's coordinates: one counter-clockwise ring."""
    return [[[west, south], [east, south], [east, north], [west, north], [west, south]]]


def feature(code: str | None, name: str | None, coordinates, *, kind: str = "Polygon", **props) -> dict:
    geometry = None if coordinates is None else {"type": kind, "coordinates": coordinates}
    properties = {"code": code, "name": name, **props}
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_geojson(path: Path, features: list[dict], layer: str = "boundaries") -> Path:
    path.write_text(
        json.dumps({"type": "FeatureCollection", "name": layer, "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    return path


def ogr2ogr(*args: str | Path) -> None:
    subprocess.run(["ogr2ogr", *map(str, args)], check=True, capture_output=True)


def run(path: Path, town: Municipality, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_boundaries", str(path), municipality=town.code, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def stored(town: Municipality, code: str) -> Neighborhood:
    return Neighborhood.objects.get(municipality=town, code=code)


def assert_same_shape(actual: GEOSGeometry, expected: GEOSGeometry, tolerance: float = 1e-6) -> None:
    """Same vertices within `tolerance` degrees, whatever ring orientation the file format imposed
    (Shapefile outer rings are clockwise, GeoJSON ones counter-clockwise)."""
    a, b = actual.clone(), expected.clone()
    a.normalize()
    b.normalize()
    assert a.equals_exact(b, tolerance), f"{a.wkt} != {b.wkt}"


# Two 自治会 near the town centre, with readings, 地区 and 日常生活圏域; names need CP932 in a DBF.
YURA = rect(LON, LAT, LON + 0.01, LAT + 0.01)
YURA_EAST = rect(LON + 0.01, LAT, LON + 0.02, LAT + 0.01)
TWO = [
    feature("Y1", "由良宿", YURA, kana="ユラシュク", district="大栄", area="大栄北圏域"),
    feature("Y2", "由良宿東", YURA_EAST, kana="ユラシュクヒガシ", district="北条", area="北条圏域"),
]


def polygon(coordinates) -> GEOSGeometry:
    """What the database should hold for a Polygon of the file: the same ring, as a MultiPolygon."""
    return GEOSGeometry(json.dumps({"type": "MultiPolygon", "coordinates": [coordinates]}), srid=4326)


# --- the demo town ---------------------------------------------------------------------------------


def test_demo_file_imports_63_neighborhoods_with_places_and_no_warnings(hokuei):
    result = import_boundaries(DEMO, municipality=hokuei)

    assert len(result.created) == 63
    assert Neighborhood.objects.filter(municipality=hokuei).count() == 63
    assert set(District.objects.filter(municipality=hokuei).values_list("name", flat=True)) == {"大栄", "北条"}
    areas = {a.name: a.neighborhoods.count() for a in DailyLifeArea.objects.filter(municipality=hokuei)}
    assert areas == {"大栄北圏域": 18, "大栄南圏域": 15, "北条圏域": 30}
    assert (result.overlaps, result.gaps, result.repaired) == ([], [], [])
    west_corner = stored(hokuei, "HK01").geom.extent
    assert west_corner[0] == pytest.approx(133.689460) and west_corner[1] == pytest.approx(35.509963)


def test_importing_the_demo_file_again_changes_nothing(hokuei, django_capture_on_commit_callbacks):
    import_boundaries(DEMO, municipality=hokuei)
    ids = dict(Neighborhood.objects.filter(municipality=hokuei).values_list("code", "pk"))

    with django_capture_on_commit_callbacks() as callbacks:
        # The way load_demo calls it.
        call_command(
            "import_boundaries", str(DEMO), municipality=hokuei.code, name_field="name", code_field="code",
            kana_field="kana", district_field="district", area_field="area", verbosity=0,
        )
        again = import_boundaries(DEMO, municipality=hokuei)

    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, 63)
    assert dict(Neighborhood.objects.filter(municipality=hokuei).values_list("code", "pk")) == ids
    assert District.objects.filter(municipality=hokuei).count() == 2
    assert DailyLifeArea.objects.filter(municipality=hokuei).count() == 3
    assert callbacks == []  # nothing changed, so no household re-assignment is queued


# --- formats, projections, axis order ------------------------------------------------------------


def test_geojson_keeps_longitude_first(hokuei, tmp_path):
    import_boundaries(write_geojson(tmp_path / "b.geojson", TWO), municipality=hokuei)

    geom = stored(hokuei, "Y1").geom
    assert geom.geom_type == "MultiPolygon" and geom.srid == 4326
    assert geom.covers(Point(LON + 0.005, LAT + 0.005, srid=4326))
    assert not geom.covers(Point(LAT + 0.005, LON + 0.005, srid=4326))


def test_shapefile_in_plane_rectangular_zone_v_with_esri_prj_comes_back_to_lon_lat(hokuei, tmp_path):
    ogr2ogr("-f", "ESRI Shapefile", "-t_srs", "EPSG:6673", "-lco", "ENCODING=CP932",
            tmp_path / "zone5.shp", write_geojson(tmp_path / "src.geojson", TWO))
    prj = (tmp_path / "zone5.prj").read_text()
    # What municipal GIS exports look like: ESRI WKT, no EPSG code anywhere, metres.
    assert "JGD_2011_Japan_Zone_5" in prj and "EPSG" not in prj and "AUTHORITY" not in prj
    assert DataSource(str(tmp_path / "zone5.shp"))[0].extent.min_x < -50_000

    result = import_boundaries(tmp_path / "zone5.shp", municipality=hokuei)

    assert "6673" in result.source_srs
    assert stored(hokuei, "Y1").geom.covers(Point(LON + 0.005, LAT + 0.005, srid=4326))
    assert_same_shape(stored(hokuei, "Y1").geom, polygon(YURA))
    assert_same_shape(stored(hokuei, "Y2").geom, polygon(YURA_EAST))


def test_geopackage_in_jgd2011_geographic_is_read_lon_lat_and_layer_can_be_chosen(hokuei, tmp_path):
    gpkg = tmp_path / "boundaries.gpkg"
    ogr2ogr("-f", "GPKG", "-t_srs", "EPSG:6668", "-nln", "r5", gpkg,
            write_geojson(tmp_path / "old.geojson", [feature("OLD", "旧", YURA)]))
    ogr2ogr("-f", "GPKG", "-update", "-t_srs", "EPSG:6668", "-nln", "r6", gpkg,
            write_geojson(tmp_path / "new.geojson", TWO))

    first = import_boundaries(gpkg, municipality=hokuei, dry_run=True)
    chosen = import_boundaries(gpkg, municipality=hokuei, layer="r6")

    assert first.layer == "r5" and first.created == ["OLD"]
    assert chosen.layer == "r6" and "6668" in chosen.source_srs
    assert sorted(chosen.created) == ["Y1", "Y2"]
    assert_same_shape(stored(hokuei, "Y1").geom, polygon(YURA))


def test_unknown_layer_is_refused_with_the_layer_names(hokuei, tmp_path):
    gpkg = tmp_path / "boundaries.gpkg"
    ogr2ogr("-f", "GPKG", "-nln", "r6", gpkg, write_geojson(tmp_path / "src.geojson", TWO))

    with pytest.raises(CommandError, match=r"boundaries\.gpkg: no layer 'r7'; layers: r6"):
        run(gpkg, hokuei, layer="r7")


def test_srid_option_gives_a_shapefile_without_prj_its_projection(hokuei, tmp_path):
    ogr2ogr("-f", "ESRI Shapefile", "-t_srs", "EPSG:6673", tmp_path / "noprj.shp",
            write_geojson(tmp_path / "src.geojson", TWO))
    (tmp_path / "noprj.prj").unlink()

    with pytest.raises(CommandError, match=r"no spatial reference system.*--srid"):
        run(tmp_path / "noprj.shp", hokuei)
    run(tmp_path / "noprj.shp", hokuei, srid=6673)

    assert_same_shape(stored(hokuei, "Y1").geom, polygon(YURA))


def test_wrong_srid_is_caught_as_coordinates_out_of_range(hokuei, tmp_path):
    ogr2ogr("-f", "ESRI Shapefile", "-t_srs", "EPSG:6673", tmp_path / "plane.shp",
            write_geojson(tmp_path / "src.geojson", TWO))

    with pytest.raises(CommandError, match=r"plane\.shp: feature 1: coordinates are not longitude/latitude"):
        run(tmp_path / "plane.shp", hokuei, srid=4326)
    assert not Neighborhood.objects.filter(municipality=hokuei).exists()


# --- encodings -------------------------------------------------------------------------------------


def _cp932_shapefile(tmp_path: Path) -> Path:
    shp = tmp_path / "cp932.shp"
    ogr2ogr("-f", "ESRI Shapefile", "-lco", "ENCODING=CP932", shp, write_geojson(tmp_path / "src.geojson", TWO))
    assert "由良宿".encode("cp932") in (tmp_path / "cp932.dbf").read_bytes()  # really CP932 on disk
    return shp


def test_shapefile_text_is_decoded_with_its_cpg(hokuei, tmp_path):
    shp = _cp932_shapefile(tmp_path)
    assert (tmp_path / "cp932.cpg").read_text().strip().upper() == "CP932"
    # An earlier import with --encoding must not leave GDAL's recoding switched off.
    import_boundaries(shp, municipality=hokuei, encoding="cp932", dry_run=True)

    import_boundaries(shp, municipality=hokuei)

    hood = stored(hokuei, "Y1")
    assert (hood.name, hood.kana, hood.district.name, hood.daily_life_area.name) == (
        "由良宿", "ユラシュク", "大栄", "大栄北圏域",
    )


def test_shapefile_without_cpg_needs_and_accepts_the_encoding_option(hokuei, tmp_path):
    shp = _cp932_shapefile(tmp_path)
    (tmp_path / "cp932.cpg").unlink()

    with pytest.raises(CommandError, match=r"cp932\.shp: feature 1: name \(name\) is not UTF-8 text; pass --encoding"):
        run(shp, hokuei)
    assert not Neighborhood.objects.filter(municipality=hokuei).exists()

    run(shp, hokuei, encoding="cp932")
    assert stored(hokuei, "Y2").name == "由良宿東"


@pytest.mark.parametrize("cpg", ["CP932", "UTF-8", "1252"])
def test_encoding_option_wins_over_any_cpg(hokuei, tmp_path, cpg):
    # Right (GDAL would recode to UTF-8 first) or wrong (as some tools write): --encoding decides.
    shp = _cp932_shapefile(tmp_path)
    (tmp_path / "cp932.cpg").write_text(cpg)

    import_boundaries(shp, municipality=hokuei, encoding="cp932")

    assert stored(hokuei, "Y1").name == "由良宿"


def test_japanese_field_names_in_a_cp932_shapefile_without_cpg(hokuei, tmp_path):
    japanese = [{**f, "properties": {"コード": f["properties"]["code"], "名称": f["properties"]["name"]}} for f in TWO]
    ogr2ogr("-f", "ESRI Shapefile", "-lco", "ENCODING=CP932", tmp_path / "jp.shp",
            write_geojson(tmp_path / "src.geojson", japanese))
    (tmp_path / "jp.cpg").unlink()

    result = import_boundaries(
        tmp_path / "jp.shp", municipality=hokuei, encoding="cp932", fields=FieldNames(code="コード", name="名称")
    )

    assert sorted(result.created) == ["Y1", "Y2"]
    assert stored(hokuei, "Y1").name == "由良宿"


def test_encoding_option_is_ignored_for_geojson_with_a_note(hokuei, tmp_path):
    result = import_boundaries(write_geojson(tmp_path / "b.geojson", TWO), municipality=hokuei, encoding="cp932")

    assert stored(hokuei, "Y1").name == "由良宿"
    assert any("--encoding applies to Shapefiles only" in note for note in result.notes)


# --- repair, overlaps, gaps ------------------------------------------------------------------------


def test_bow_tie_is_repaired_into_two_triangles_and_reported(hokuei, tmp_path):
    bow_tie = [[[LON, LAT], [LON + 0.01, LAT + 0.01], [LON + 0.01, LAT], [LON, LAT + 0.01], [LON, LAT]]]
    path = write_geojson(tmp_path / "b.geojson", [feature("OK", "正常", YURA_EAST), feature("BOW", "蝶", bow_tie)])

    result = import_boundaries(path, municipality=hokuei)

    assert [(r.number, r.code) for r in result.repaired] == [(2, "BOW")]
    assert result.repaired[0].reason.startswith("Self-intersection")
    geom = stored(hokuei, "BOW").geom
    assert geom.valid and geom.geom_type == "MultiPolygon" and len(geom) == 2
    assert geom.area == pytest.approx(0.01 * 0.01 / 2)


def test_overlaps_above_the_threshold_are_reported_with_codes_and_area(hokuei, tmp_path):
    path = write_geojson(tmp_path / "b.geojson", [
        feature("A", "甲", rect(LON, LAT, LON + 0.01, LAT + 0.01)),
        feature("B", "乙", rect(LON + 0.009, LAT, LON + 0.019, LAT + 0.01)),  # 0.001° into A
        feature("C", "丙", rect(LON + 0.019, LAT, LON + 0.029, LAT + 0.01)),  # shares B's edge only
    ])

    result = import_boundaries(path, municipality=hokuei)
    quiet = import_boundaries(path, municipality=hokuei, overlap_threshold=200_000)

    # 0.001° of longitude (~90.7 m at 35.5° N) by 0.01° of latitude (~1,109 m).
    assert [(o.code_a, o.code_b) for o in result.overlaps] == [("A", "B")]
    assert 95_000 < result.overlaps[0].area_m2 < 106_000
    assert quiet.overlaps == []
    assert Neighborhood.objects.filter(municipality=hokuei).count() == 3  # warnings, not failures


def test_gaps_inside_the_union_are_reported_but_the_outside_is_not(hokuei, tmp_path):
    w, s = LON, LAT
    frame = [  # four 自治会 around an empty 0.001° square
        feature("S", "南", rect(w, s, w + 0.003, s + 0.001)),
        feature("N", "北", rect(w, s + 0.002, w + 0.003, s + 0.003)),
        feature("W", "西", rect(w, s + 0.001, w + 0.001, s + 0.002)),
        feature("E", "東", rect(w + 0.002, s + 0.001, w + 0.003, s + 0.002)),
    ]
    path = write_geojson(tmp_path / "b.geojson", frame)

    result = import_boundaries(path, municipality=hokuei)
    quiet = import_boundaries(path, municipality=hokuei, gap_threshold=20_000)

    assert len(result.gaps) == 1
    gap = result.gaps[0]
    assert 9_000 < gap.area_m2 < 11_000  # ~90.7 m x ~110.9 m
    assert gap.around == ("E", "N", "S", "W")
    assert (w + 0.001 < gap.lon < w + 0.002) and (s + 0.001 < gap.lat < s + 0.002)
    assert quiet.gaps == []


# --- writing: idempotence, places, dry run, all or nothing ---------------------------------------


def test_reimport_updates_in_place_by_code(hokuei, tmp_path):
    import_boundaries(write_geojson(tmp_path / "v1.geojson", TWO), municipality=hokuei)
    ids = dict(Neighborhood.objects.filter(municipality=hokuei).values_list("code", "pk"))
    moved = rect(LON + 0.01, LAT + 0.01, LON + 0.02, LAT + 0.02)
    v2 = [
        feature("Y1", "由良宿一区", YURA, kana="ユラシュクイック", district="大栄", area="大栄北圏域"),
        feature("Y2", "由良宿東", moved, kana="ユラシュクヒガシ", district="北条", area="北条圏域"),
        feature("Y3", "新町", rect(LON, LAT + 0.01, LON + 0.01, LAT + 0.02), kana="", district="大栄", area=""),
    ]

    result = import_boundaries(write_geojson(tmp_path / "v2.geojson", v2), municipality=hokuei)

    assert (result.created, sorted(result.updated), result.unchanged) == (["Y3"], ["Y1", "Y2"], [])
    assert stored(hokuei, "Y1").pk == ids["Y1"] and stored(hokuei, "Y2").pk == ids["Y2"]
    assert Neighborhood.objects.filter(municipality=hokuei).count() == 3
    assert stored(hokuei, "Y1").name == "由良宿一区"
    assert_same_shape(stored(hokuei, "Y2").geom, polygon(moved))
    y3 = stored(hokuei, "Y3")
    assert (y3.district.name, y3.daily_life_area) == ("大栄", None)
    assert District.objects.filter(municipality=hokuei).count() == 2  # 大栄 found, not duplicated
    assert result.districts_created == [] and result.areas_created == []


def test_fields_missing_from_the_file_are_left_alone(hokuei, tmp_path):
    import_boundaries(write_geojson(tmp_path / "full.geojson", TWO), municipality=hokuei)
    bare = [feature("Y1", "由良宿", YURA), feature("Y9", "新", rect(LON, LAT + 0.01, LON + 0.01, LAT + 0.02))]

    result = import_boundaries(write_geojson(tmp_path / "bare.geojson", bare), municipality=hokuei)

    assert result.unchanged == ["Y1"] and result.created == ["Y9"]
    assert stored(hokuei, "Y1").district.name == "大栄"  # not cleared by a file without 地区
    y9 = stored(hokuei, "Y9")
    assert (y9.kana, y9.district, y9.daily_life_area) == ("", None, None)
    assert any("'district'" in note for note in result.notes)
    assert result.not_in_file == ["Y2"] and stored(hokuei, "Y2")  # kept, only reported


def test_dry_run_reports_everything_and_writes_nothing(hokuei, tmp_path, django_capture_on_commit_callbacks):
    factories.neighborhood(hokuei, code="Y1", name="旧名", geom=factories.square(LON, LAT))
    overlapping = [*TWO, feature("Y3", "重複", rect(LON + 0.005, LAT, LON + 0.015, LAT + 0.01))]
    path = write_geojson(tmp_path / "b.geojson", overlapping)

    with django_capture_on_commit_callbacks() as callbacks:
        result = import_boundaries(path, municipality=hokuei, dry_run=True)
        out, _err = run(path, hokuei, dry_run=True)

    assert result.dry_run and result.created == ["Y2", "Y3"] and result.updated == ["Y1"]
    assert {(o.code_a, o.code_b) for o in result.overlaps} == {("Y1", "Y3"), ("Y2", "Y3")}
    assert "dry run: nothing was written" in out
    assert list(Neighborhood.objects.filter(municipality=hokuei).values_list("code", "name")) == [("Y1", "旧名")]
    assert not District.objects.filter(municipality=hokuei).exists()
    assert not DailyLifeArea.objects.filter(municipality=hokuei).exists()
    assert callbacks == []  # no household re-assignment queued


def test_one_bad_feature_fails_the_file_listing_every_problem(hokuei, tmp_path):
    factories.neighborhood(hokuei, code="Y1", name="旧名", geom=factories.square(LON, LAT))
    point = [LON, LAT]
    path = write_geojson(tmp_path / "boundaries.geojson", [
        *TWO,                                                       # 1, 2: fine
        feature("", "名無し", YURA),                                # 3
        feature("Y4", "   ", YURA),                                 # 4
        feature("Y5", "空", None),                                  # 5
        feature("Y6", "点", point, kind="Point"),                   # 6
        feature("Y1", "重複", YURA),                                # 7
        feature(None, "", YURA),                                    # 8: two problems
        feature("Y9", "短い", [[[LON, LAT], [LON + 0.01, LAT], [LON, LAT]]]),  # 9
        feature("Y10", "線", [[[LON, LAT], [LON + 0.01, LAT], [LON + 0.02, LAT], [LON, LAT]]]),  # 10: flat
    ])

    with pytest.raises(CommandError) as caught:
        run(path, hokuei)

    message = str(caught.value)
    for line in (
        "boundaries.geojson: feature 3: code is empty",
        "boundaries.geojson: feature 4: name is empty",
        "boundaries.geojson: feature 5: geometry is missing",
        "boundaries.geojson: feature 6: geometry is a Point, not a Polygon or MultiPolygon",
        "boundaries.geojson: feature 7: code Y1 is also used by feature 1",
        "boundaries.geojson: feature 8: code is empty",
        "boundaries.geojson: feature 8: name is empty",
        "boundaries.geojson: feature 9: geometry has a ring with fewer than 4 points",
    ):
        assert line in message.splitlines()
    # Found by PostGIS after the reading checks, and still listed with them.
    assert "boundaries.geojson: feature 10: geometry has no area left after repair" in message
    assert message.startswith("9 problems; nothing was imported")
    lines = message.splitlines()
    assert lines.index("boundaries.geojson: feature 8: code is empty") < lines.index(
        "boundaries.geojson: feature 9: geometry has a ring with fewer than 4 points"
    )  # in file order
    assert list(Neighborhood.objects.filter(municipality=hokuei).values_list("code", "name")) == [("Y1", "旧名")]
    assert not District.objects.filter(municipality=hokuei).exists()


def test_missing_code_field_names_the_fields_there_are(hokuei, tmp_path):
    renamed = [{**f, "properties": {"KEY": f["properties"]["code"], "name": f["properties"]["name"]}} for f in TWO]
    path = write_geojson(tmp_path / "b.geojson", renamed)

    with pytest.raises(CommandError, match=r"b\.geojson: layer 'boundaries' has no field 'code' for the code "
                                           r"\(fields: KEY, name\); use --code-field"):
        run(path, hokuei)
    result = import_boundaries(path, municipality=hokuei, fields=FieldNames(code="KEY"))

    assert sorted(result.created) == ["Y1", "Y2"]


def test_unknown_municipality_is_refused(db, tmp_path):
    path = write_geojson(tmp_path / "b.geojson", TWO)

    with pytest.raises(CommandError, match="No municipality with code '999999'"):
        call_command("import_boundaries", str(path), municipality="999999")


# --- after the write -------------------------------------------------------------------------------


def test_households_are_reassigned_to_new_boundaries_after_commit(hokuei, tmp_path, django_capture_on_commit_callbacks):
    household = Household.objects.create(
        municipality=hokuei, external_id="H-1", address="北栄町由良宿1", location=Point(LON + 0.005, LAT + 0.005, srid=4326)
    )
    assert household.neighborhood is None

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run(write_geojson(tmp_path / "b.geojson", TWO), hokuei, verbosity=0)

    assert len(callbacks) == 1
    household.refresh_from_db()
    assert household.neighborhood == stored(hokuei, "Y1")


def test_output_counts_and_warnings_and_silence_at_verbosity_0(hokuei, tmp_path):
    path = write_geojson(tmp_path / "b.geojson", [*TWO, feature("Y3", "重複", YURA)])

    out, err = run(path, hokuei)
    quiet_out, quiet_err = run(path, hokuei, verbosity=0)

    assert "created 3, updated 0, unchanged 0" in out
    assert "new 地区: 北条, 大栄" in out
    assert "overlap Y1 / Y3" in err
    assert (quiet_out, quiet_err) == ("", "")


def test_result_is_a_dataclass_the_command_prints(hokuei, tmp_path):
    result = import_boundaries(write_geojson(tmp_path / "b.geojson", TWO), municipality=hokuei)

    assert isinstance(result, BoundaryImportResult)
    assert (result.file, result.layer, result.municipality_code) == ("b.geojson", "boundaries", "313726")
    assert result.source_srs.startswith("EPSG:4326")
    assert not result.has_warnings
