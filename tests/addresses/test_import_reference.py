"""manage.py import_address_reference: each real file kind, zips, other municipalities skipped,
idempotence, dry run, and bad files refused with file:line and nothing written."""

import pytest
from django.core.management import CommandError, call_command

from addresses.models import AddressReference
from tests import factories
from tests.addresses import files

CENTRE = (133.75, 35.49)


@pytest.fixture
def muni(db):
    return factories.municipality("313726", name="北栄町")


def _city(muni) -> str:
    return f"東伯郡{muni.name}"


def _mlit_block(tmp_path, muni, *, extra=()):
    lon, lat = CENTRE
    rows = [
        files.mlit_block_row("鳥取県", _city(muni), "中央三丁目", "5", lon, lat),
        files.mlit_block_row("鳥取県", _city(muni), "大字西園", "521", lon + 0.01, lat, rsdt=False),
        files.mlit_block_row("鳥取県", "倉吉市", "葵町", "1", 133.82, 35.43),  # another municipality
        *extra,
    ]
    return files.write_csv(tmp_path / "31_2023.csv", files.MLIT_BLOCK_HEADER, rows, encoding="cp932")


def _mlit_town(tmp_path, muni, *, extra=()):
    lon, lat = CENTRE
    rows = [
        files.mlit_town_row(muni.code, "鳥取県", _city(muni), "313720001", "中央三丁目", lon, lat),
        files.mlit_town_row(muni.code, "鳥取県", _city(muni), "313720002", "西園", lon + 0.01, lat),
        files.mlit_town_row(muni.code, "鳥取県", _city(muni), "313720003", "由良宿", lon - 0.01, lat),
        files.mlit_town_row("312037", "鳥取県", "倉吉市", "312030001", "葵町", 133.82, 35.43),
        *extra,
    ]
    return files.write_csv(tmp_path / "31000-17.0b.csv", files.MLIT_TOWN_HEADER, rows, encoding="cp932")


def _abr_residences(tmp_path, muni):
    lon, lat = CENTRE
    master, pos = files.abr_residence_rows(
        muni.code, "0001003", "中央", "三丁目", [("5", "12", lon + 0.0001, lat + 0.0001), ("5", "14", lon + 0.0002, lat)]
    )
    other_master, other_pos = files.abr_residence_rows("312037", "0001000", "葵町", "", [("1", "1", 133.82, 35.43)])
    return (
        files.write_csv(tmp_path / f"mt_rsdtdsp_rsdt_city{muni.code}.csv", files.ABR_RESIDENCE_HEADER,
                        master + other_master, encoding="utf-8"),
        files.write_csv(tmp_path / f"mt_rsdtdsp_rsdt_pos_city{muni.code}.csv", files.ABR_RESIDENCE_POS_HEADER,
                        pos + other_pos, encoding="utf-8"),
    )


def _run(muni, *paths, **options) -> str:
    import io

    out = io.StringIO()
    call_command("import_address_reference", *map(str, paths), municipality=muni.code, stdout=out, **options)
    return out.getvalue()


def _points(muni) -> dict:
    return {
        (r.level, r.town, r.block, r.residence): (round(r.location.x, 6), round(r.location.y, 6), r.source)
        for r in AddressReference.objects.filter(municipality=muni)
    }


def test_every_kind_is_read_and_other_municipalities_are_skipped(tmp_path, muni):
    block, town = _mlit_block(tmp_path, muni), _mlit_town(tmp_path, muni)
    residence, residence_pos = _abr_residences(tmp_path, muni)
    out = _run(muni, block, files.zipped(town), residence, residence_pos)
    points = _points(muni)
    assert points == {
        ("block", "中央3丁目", "5", ""): (133.75, 35.49, "mlit_block"),
        ("block", "西園", "521", ""): (133.76, 35.49, "mlit_block"),
        ("town", "中央3丁目", "", ""): (133.75, 35.49, "mlit_town"),
        ("town", "西園", "", ""): (133.76, 35.49, "mlit_town"),
        ("town", "由良宿", "", ""): (133.74, 35.49, "mlit_town"),
        ("residence", "中央3丁目", "5", "12"): (133.7501, 35.4901, "abr_residence"),
        ("residence", "中央3丁目", "5", "14"): (133.7502, 35.49, "abr_residence"),
    }
    assert "31_2023.csv: 位置参照情報 街区レベル (cp932), 3 rows, 2 of this municipality, 1 of other municipalities skipped" in out
    assert "31000-17.0b.zip/31000-17.0b.csv: 位置参照情報 大字・町丁目レベル (cp932)" in out
    assert "residence: 2 created, 0 updated, 0 unchanged" in out
    assert "block: 2 created" in out and "town: 3 created" in out


def test_abr_town_master_with_its_position_extension(tmp_path, muni):
    master = files.write_csv(tmp_path / "mt_town_city.csv", files.ABR_TOWN_HEADER, [
        [muni.code, "0001001", "2", "鳥取県", "東伯郡", muni.name, "", "西園", "", "", "", "0", "", ""],
        [muni.code, "0001003", "2", "鳥取県", "東伯郡", muni.name, "", "中央", "三丁目", "3", "", "1", "", ""],
    ], encoding="utf-8")
    # the older Japanese column names of the 位置参照拡張
    pos = files.write_csv(tmp_path / "mt_town_pos_pref31.csv", ["全国地方公共団体コード", "町字id", "住居表示フラグ", "代表点_経度", "代表点_緯度", "代表点_座標参照系"], [
        [muni.code, "0001001", "0", "133.76", "35.49", "EPSG:6668"],
        [muni.code, "0001003", "1", "133.75", "35.49", "EPSG:6668"],
    ], encoding="utf-8")
    _run(muni, files.zipped(master), pos)
    assert _points(muni) == {
        ("town", "西園", "", ""): (133.76, 35.49, "abr_town"),
        ("town", "中央3丁目", "", ""): (133.75, 35.49, "abr_town"),
    }


def test_a_second_load_of_the_same_files_writes_nothing(tmp_path, muni):
    paths = [_mlit_block(tmp_path, muni), _mlit_town(tmp_path, muni), *_abr_residences(tmp_path, muni)]
    _run(muni, *paths)
    before = {r.pk: r.updated_at for r in AddressReference.objects.filter(municipality=muni)}
    out = _run(muni, *paths)
    assert "residence: 0 created, 0 updated, 2 unchanged" in out
    assert "block: 0 created, 0 updated, 2 unchanged" in out
    assert "town: 0 created, 0 updated, 3 unchanged" in out
    assert {r.pk: r.updated_at for r in AddressReference.objects.filter(municipality=muni)} == before


def test_a_moved_point_is_updated_in_place(tmp_path, muni):
    _run(muni, _mlit_town(tmp_path, muni))
    lon, lat = CENTRE
    rows = [files.mlit_town_row(muni.code, "鳥取県", _city(muni), "313720003", "由良宿", lon - 0.02, lat)]
    out = _run(muni, files.write_csv(tmp_path / "new.csv", files.MLIT_TOWN_HEADER, rows, encoding="cp932"))
    assert "town: 0 created, 1 updated, 0 unchanged" in out
    assert _points(muni)[("town", "由良宿", "", "")] == (133.73, 35.49, "mlit_town")
    assert len(_points(muni)) == 3  # never deletes


def test_dry_run_writes_nothing(tmp_path, muni):
    out = _run(muni, _mlit_town(tmp_path, muni), dry_run=True)
    assert "town: 3 created" in out and "dry run" in out
    assert not AddressReference.objects.filter(municipality=muni).exists()


def test_bad_rows_are_refused_with_file_line_and_column_and_nothing_is_written(tmp_path, muni):
    good = _mlit_town(tmp_path, muni)
    bad = _mlit_block(tmp_path, muni, extra=[
        files.mlit_block_row("鳥取県", _city(muni), "中央三丁目", "6", 133.75, 95.0),
        ["鳥取県", _city(muni), "中央三丁目", "", "7", "5", "0", "0", "35.5", "abc", "1", "1", "0", "0"],
    ])
    with pytest.raises(CommandError) as caught:
        _run(muni, good, bad)
    message = str(caught.value)
    assert "31_2023.csv:5: 緯度: 95.000000 is not a latitude in Japan (20..46)" in message
    assert "31_2023.csv:6: 経度: 'abc' is not a number" in message
    assert "nothing was written" in message
    assert not AddressReference.objects.filter(municipality=muni).exists()


def test_a_file_of_no_known_kind_is_refused_at_line_1(tmp_path, muni):
    other = files.write_csv(tmp_path / "households.csv", ["external_id", "address"], [["1", "西園1"]], encoding="utf-8")
    with pytest.raises(CommandError, match=r"households.csv:1: the header matches no kind of address reference file"):
        _run(muni, _mlit_town(tmp_path, muni), other)
    assert not AddressReference.objects.filter(municipality=muni).exists()


def test_an_abr_master_without_its_position_file_is_refused(tmp_path, muni):
    master, _pos = _abr_residences(tmp_path, muni)
    with pytest.raises(CommandError, match=r"mt_rsdtdsp_rsdt_city313726.csv:1: .* give both in the same command"):
        _run(muni, master)


def test_a_zip_with_two_csv_files_is_refused(tmp_path, muni):
    import zipfile

    target = tmp_path / "two.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("a.csv", "x\n")
        archive.writestr("b.csv", "y\n")
    with pytest.raises(CommandError, match=r"two.zip:1: a zip must hold exactly one CSV file \(it holds 2\)"):
        _run(muni, target)


def test_an_unknown_municipality_code_is_refused(tmp_path, db):
    with pytest.raises(CommandError, match="No municipality with code '999999'"):
        call_command("import_address_reference", str(tmp_path / "x.csv"), municipality="999999")
