"""manage.py import_partners against a real PostGIS: Japanese headers in CP932, English headers,
re-runs that write nothing, each bad input with file:line and nothing written, dry runs, and the
other municipalities' corporations untouched (under row-level security)."""

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests import factories
from visits.models import PartnerOrganization

JA = ["法人コード", "法人名", "事業所住所", "緯度", "経度", "電話番号", "担当者"]
EN = ["code", "name", "address", "lat", "lon", "phone", "contact_person"]
SHAKYO = ["hokueishakyo", "社会福祉法人北栄町社会福祉協議会", "鳥取県東伯郡北栄町由良宿423-1", "35.496631", "133.774569",
          "０８５８－３７－５８５０", "髙橋 一郎"]
CHUBU = ["chubufukushikai", "社会福祉法人中部福祉会", "鳥取県東伯郡北栄町田井48-1", "35.49962", "133.758729", "0858-00-0003", ""]
NO_OFFICE = ["npo-tsunagi", "NPO法人つなぎ", "", "", "", "", ""]


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8") -> Path:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run(path: Path, town, *options: str) -> str:
    out = io.StringIO()
    call_command("import_partners", str(path), "--municipality", town.code, *options, stdout=out, stderr=out)
    return out.getvalue()


def stored(town) -> dict[str, tuple]:
    """Each partner's fields and its row version (xmin changes on every write of the row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, name, address, ST_X(office), ST_Y(office), phone, contact_person, xmin::text "
            "FROM visits_partnerorganization WHERE municipality_id = %s", [town.pk],
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


@pytest.fixture
def town(db):
    return factories.municipality()


def test_japanese_headers_in_cp932(town, tmp_path):
    path = write_csv(tmp_path / "受託法人.csv", JA, [SHAKYO, CHUBU, NO_OFFICE], encoding="cp932")

    out = run(path, town)

    assert out.splitlines()[0] == "受託法人.csv (cp932): 3 created, 0 updated, 0 unchanged"
    shakyo = PartnerOrganization.objects.get(municipality=town, code="hokueishakyo")
    assert (shakyo.name, shakyo.address, shakyo.phone, shakyo.contact_person) == (
        "社会福祉法人北栄町社会福祉協議会", "鳥取県東伯郡北栄町由良宿423-1", "0858-37-5850", "髙橋 一郎",
    )
    assert (shakyo.office.x, shakyo.office.y, shakyo.office.srid) == (133.774569, 35.496631, 4326)
    assert PartnerOrganization.objects.get(municipality=town, code="npo-tsunagi").office is None


def test_english_headers_utf8_with_bom(town, tmp_path):
    path = write_csv(tmp_path / "partners.csv", EN, [CHUBU], encoding="utf-8-sig")

    out = run(path, town)

    assert "partners.csv (utf-8-sig): 1 created" in out
    assert set(stored(town)) == {"chubufukushikai"}


def test_other_japanese_names_and_columns_in_any_order(town, tmp_path):
    path = write_csv(tmp_path / "p.csv", ["名称", "法人コード", "住所"], [["社会福祉法人中部福祉会", "chubu", "北栄町田井"]])

    run(path, town)

    assert stored(town)["chubu"][:2] == ("社会福祉法人中部福祉会", "北栄町田井")


def test_a_second_run_writes_nothing(town, tmp_path):
    path = write_csv(tmp_path / "partners.csv", JA, [SHAKYO, CHUBU, NO_OFFICE], encoding="cp932")
    run(path, town)
    before = stored(town)

    out = run(path, town)

    assert out.splitlines()[0] == "partners.csv (cp932): 0 created, 0 updated, 3 unchanged"
    assert stored(town) == before  # the same row versions: nothing was rewritten


def test_changed_rows_are_updated_and_only_they(town, tmp_path):
    run(write_csv(tmp_path / "partners.csv", EN, [SHAKYO, CHUBU, NO_OFFICE]), town)
    before = stored(town)
    moved = [*CHUBU[:3], "35.5", "133.76", CHUBU[5], "山田 花子"]

    out = run(write_csv(tmp_path / "partners.csv", EN, [SHAKYO, moved]), town)

    assert out.splitlines() == [
        "partners.csv (utf-8): 0 created, 1 updated, 1 unchanged",
        "  ~ chubufukushikai: contact_person, office",
        "not in the file, left as they are: npo-tsunagi",
        "import done",
    ]
    after = stored(town)
    assert after["chubufukushikai"][2:6] == (133.76, 35.5, "0858-00-0003", "山田 花子")
    assert after["hokueishakyo"] == before["hokueishakyo"]
    assert after["npo-tsunagi"] == before["npo-tsunagi"]


def test_an_office_can_be_removed(town, tmp_path):
    run(write_csv(tmp_path / "partners.csv", EN, [CHUBU]), town)

    run(write_csv(tmp_path / "partners.csv", EN, [[*CHUBU[:3], "", "", *CHUBU[5:]]]), town)

    assert PartnerOrganization.objects.get(code="chubufukushikai").office is None


def test_dry_run_writes_nothing(town, tmp_path):
    existing = factories.partner(town, code="chubufukushikai")
    before = stored(town)
    path = write_csv(tmp_path / "partners.csv", EN, [SHAKYO, CHUBU])

    out = run(path, town, "--dry-run")

    assert out.splitlines() == [
        "partners.csv (utf-8): 1 would be created, 1 would be updated, 0 unchanged",
        "  + hokueishakyo",
        "  ~ chubufukushikai: name, address, phone, office",
        "dry run: nothing was written",
    ]
    assert stored(town) == before
    assert PartnerOrganization.objects.get(pk=existing.pk).name == existing.name


def test_another_municipalitys_partners_are_untouched(town, tmp_path):
    other = factories.municipality()
    theirs = factories.partner(other, code="chubufukushikai")
    before = stored(other)

    run(write_csv(tmp_path / "partners.csv", EN, [CHUBU]), town)

    assert stored(other) == before
    ours = PartnerOrganization.objects.get(municipality=town, code="chubufukushikai")
    assert ours.pk != theirs.pk
    assert ours.name == "社会福祉法人中部福祉会"


LONG_NAME = "法" * 201


@pytest.mark.parametrize(
    ("rows", "problems"),
    [
        ([SHAKYO, ["hokuei shakyo", *CHUBU[1:]]],
         ["partners.csv:3: code: 'hokuei shakyo' is not a slug (letters, digits, - and _ only)"]),
        ([SHAKYO, ["", *CHUBU[1:]]], ["partners.csv:3: code: is required"]),
        ([SHAKYO, CHUBU, [SHAKYO[0], *CHUBU[1:]]], ["partners.csv:4: code: 'hokueishakyo' is also on line 2"]),
        ([[*CHUBU[:3], "53.5", "133.76", *CHUBU[5:]]],
         ["partners.csv:2: lat/lon: 53.5, 133.76 is outside Japan (lat 20–46, lon 122–154)"]),
        ([[*CHUBU[:3], "133.76", "35.5", *CHUBU[5:]]],
         ["partners.csv:2: lat/lon: 133.76, 35.5 is outside Japan (lat 20–46, lon 122–154) (lat and lon look swapped)"]),
        ([[*CHUBU[:3], "35.5", "", *CHUBU[5:]]],
         ["partners.csv:2: lon: is empty but lat is given (give both, or neither for no office location)"]),
        ([[*CHUBU[:3], "", "133.76", *CHUBU[5:]]],
         ["partners.csv:2: lat: is empty but lon is given (give both, or neither for no office location)"]),
        ([[*CHUBU[:3], "北緯35度", "133.76", *CHUBU[5:]]], ["partners.csv:2: lat: '北緯35度' is not a number"]),
        ([[CHUBU[0], LONG_NAME, *CHUBU[2:]]], ["partners.csv:2: name: is 201 characters long (at most 200)"]),
        ([[CHUBU[0], "", *CHUBU[2:]]], ["partners.csv:2: name: is required"]),
        ([[CHUBU[0], "中部\x1b福祉会", *CHUBU[2:]]],
         ["partners.csv:2: name: contains a control or bidirectional-formatting character (U+001B)"]),
        ([[*CHUBU[:2], "北栄町\n田井", *CHUBU[3:]]],
         ["partners.csv:2: address: must be a single line (contains U+000A)"]),
        ([[*CHUBU[:5], "内線なし", CHUBU[6]]],
         ["partners.csv:2: phone: '内線なし' is not a phone number (digits, -, ( ) and spaces)"]),
        ([[*CHUBU, "extra"]], ["partners.csv:2: 8 fields but the header has 7"]),
    ],
)
def test_bad_rows_are_refused_with_file_and_line_and_nothing_is_written(town, tmp_path, rows, problems):
    factories.partner(town, code="hokueishakyo")
    before = stored(town)
    path = write_csv(tmp_path / "partners.csv", EN, rows)

    with pytest.raises(CommandError) as refused:
        run(path, town)

    noun = "problem" if len(problems) == 1 else "problems"
    assert str(refused.value).splitlines() == [f"{len(problems)} {noun}, nothing was written:", *(f"  {p}" for p in problems)]
    assert stored(town) == before


def test_problems_name_the_files_own_headers_and_come_all_at_once(town, tmp_path):
    rows = [[*SHAKYO[:3], "35.5", "", *SHAKYO[5:]], ["x y", "", *CHUBU[2:]]]
    path = write_csv(tmp_path / "受託法人.csv", JA, rows, encoding="cp932")

    with pytest.raises(CommandError) as refused:
        run(path, town)

    assert str(refused.value).splitlines()[1:] == [
        "  受託法人.csv:2: 経度: is empty but 緯度 is given (give both, or neither for no office location)",
        "  受託法人.csv:3: 法人コード: 'x y' is not a slug (letters, digits, - and _ only)",
        "  受託法人.csv:3: 法人名: is required",
    ]
    assert not PartnerOrganization.objects.filter(municipality=town).exists()


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (["code", "name", "latitude"],
         "partners.csv:1: unknown column 'latitude' (known: code / 法人コード, name / 法人名 / 名称, "
         "address / 事業所住所 / 住所, lat / 緯度, lon / 経度, phone / 電話番号, contact_person / 担当者)"),
        (["code", "address"], "partners.csv:1: missing column(s): name / 法人名 / 名称 (found: code, address)"),
        (["code", "name", "法人名"], "partners.csv:1: 'name' and '法人名' are the same column (name)"),
    ],
)
def test_bad_headers(town, tmp_path, header, problem):
    path = write_csv(tmp_path / "partners.csv", header, [["chubu", "中部", "35.5"][: len(header)]])

    with pytest.raises(CommandError) as refused:
        run(path, town)

    assert str(refused.value).splitlines() == ["1 problem, nothing was written:", f"  {problem}"]
    assert not PartnerOrganization.objects.exists()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("313725", "No municipality with code '313725': 313725: the check digit should be 6."),
        ("31372", "No municipality with code '31372': 31372: 5 digits, without the check digit: the full code is 313726."),
        ("313726", "No municipality with code '313726': create it first with `manage.py create_municipality 313726`."),
    ],
)
def test_unknown_municipality(db, tmp_path, code, message):
    path = write_csv(tmp_path / "partners.csv", EN, [CHUBU])

    with pytest.raises(CommandError) as refused:
        call_command("import_partners", str(path), "--municipality", code, stdout=io.StringIO())

    assert str(refused.value) == message


def test_full_width_municipality_code(db, tmp_path):
    call_command("create_municipality", "313726", "--prefecture", "鳥取県", "--name", "北栄町", stdout=io.StringIO())
    path = write_csv(tmp_path / "partners.csv", EN, [CHUBU])

    call_command("import_partners", str(path), "--municipality", "３１３７２６", stdout=io.StringIO())

    assert PartnerOrganization.objects.filter(municipality__code="313726", code="chubufukushikai").exists()
