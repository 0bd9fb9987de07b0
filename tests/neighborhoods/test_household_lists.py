"""Household lists as municipalities really send them: Japanese headers in CP932, one row per
person (住民基本台帳 extracts) with 和暦 birth dates and 続柄 words, column mappings; and what the
ON CONFLICT merge promises (unchanged re-imports write nothing, points are never cleared, merged
households are left alone, two imports at once create each household once)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.apps import apps
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from neighborhoods.models import Household, Resident
from tests import factories
from tests.neighborhoods.test_import_households import run, write_csv

ISSUE_HEADER = ["世帯番号", "住所", "緯度", "経度", "世帯人数"]  # the exact header of issue 14
JUKI_HEADER = ["世帯番号", "氏名", "カナ", "生年月日", "続柄", "性別", "個人番号", "住所", "方書"]
JUKI = [
    ["0001", "田中 秀樹", "ﾀﾅｶ ﾋﾃﾞｷ", "昭和20年4月1日", "世帯主", "男", "123456789012", "鳥取県東伯郡北栄町由良宿123-4", ""],
    ["0001", "田中　恵美", "ﾀﾅｶ ｴﾐ", "S23.10.5", "妻", "女", "234567890123", "鳥取県東伯郡北栄町由良宿123-4", ""],
    ["0001", "田中 蒼", "たなか あおい", "平成元年1月8日", "長男", "男", "345678901234", "鳥取県東伯郡北栄町由良宿123-4", ""],
    # a child listed before the 世帯主: the household still takes the 世帯主's row
    ["0002", "山田 翔", "ﾔﾏﾀﾞ ｼｮｳ", "R1/5/1", "孫", "男", "456789012345", "北栄町田井５０", "コーポ田井１０１"],
    ["0002", "山田 花子", "ﾔﾏﾀﾞ ﾊﾅｺ", "1950/3/1", "本人", "女", "567890123456", "北栄町田井５０", "コーポ田井１０１"],
]


def hokuei(db) -> object:
    town = factories.municipality()
    town.name = "北栄町"
    town.save(update_fields=["name"])
    return town


@pytest.fixture
def town(db):
    return hokuei(db)


def message_of(excinfo) -> str:
    return str(excinfo.value)


def xmins(town) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'h:' || external_id, xmin::text FROM neighborhoods_household WHERE municipality_id = %s "
            "UNION ALL SELECT 'r:' || id::text, xmin::text FROM neighborhoods_resident WHERE municipality_id = %s",
            [town.pk, town.pk],
        )
        return dict(cursor.fetchall())


def history_count() -> int:
    return sum(apps.get_model("neighborhoods", name).objects.count() for name in ("HouseholdHistory", "ResidentHistory"))


# --- headers as they come -------------------------------------------------------------------------


def test_the_cp932_file_of_the_issue_imports(town, tmp_path):
    rows = [
        ["H1", "鳥取県東伯郡北栄町由良宿１２３－４", "35.505", "133.745", "３"],
        ["H2", "北栄町髙江①5", "", "", "1人"],
    ]
    path = write_csv(tmp_path / "世帯.csv", ISSUE_HEADER, rows, encoding="cp932")

    out = run("import_households", str(path), municipality=town.code)

    assert "(cp932)" in out and "households: 2 created, 0 updated, 0 unchanged, 0 skipped" in out
    h1 = Household.objects.get(municipality=town, external_id="H1")
    assert (h1.address, h1.member_count, h1.match_level) == ("鳥取県東伯郡北栄町由良宿123-4", 3, "coordinates")
    assert (h1.location.x, h1.location.y) == (133.745, 35.505)
    h2 = Household.objects.get(municipality=town, external_id="H2")
    assert (h2.address, h2.member_count, h2.location, h2.match_level) == ("北栄町髙江①5", 1, None, "unmatched")
    assert "households without a point (unmatched): 1" in out


def test_headers_are_compared_without_width_case_or_spaces(town, tmp_path):
    header = [" 世帯ＩＤ ", "所在地", "住所ﾌﾘｶﾞﾅ", "LATITUDE", "Longitude", "人数"]
    path = write_csv(tmp_path / "h.csv", header, [["Ｈ１", "北栄町由良宿1", "ﾕﾗｼｭｸ1", "35.5", "133.7", "2"]])

    run("import_households", str(path), municipality=town.code)

    h = Household.objects.get(municipality=town)
    assert (h.external_id, h.address, h.address_kana, h.member_count) == ("H1", "北栄町由良宿1", "ユラシュク1", 2)
    assert (h.location.x, h.location.y) == (133.7, 35.5)


def test_a_per_person_extract_gives_households_and_residents(town, tmp_path):
    path = write_csv(tmp_path / "juki.csv", JUKI_HEADER, JUKI, encoding="cp932")

    out = run("import_households", str(path), municipality=town.code)

    assert "households: 2 created" in out
    assert "residents: 5 created, 0 updated, 0 unchanged, 0 skipped" in out
    assert "column '個人番号' ignored: 個人番号 and 住民票コード are never read or stored" in out
    households = {h.external_id: h for h in Household.objects.filter(municipality=town)}
    assert households["0001"].address == "鳥取県東伯郡北栄町由良宿123-4"
    assert households["0002"].address == "北栄町田井50 コーポ田井101"  # 方書 after one space
    assert households["0002"].match_level == "unmatched" and households["0002"].location is None
    people = {r.name: r for r in Resident.objects.filter(municipality=town)}
    assert set(people) == {"田中 秀樹", "田中 恵美", "田中 蒼", "山田 翔", "山田 花子"}
    head = people["田中 秀樹"]
    assert (head.household_id, head.kana, head.birth_year, head.relation) == (households["0001"].pk, "タナカ ヒデキ", 1945, "head")
    assert head.age_band == "75_plus"
    assert (people["田中 恵美"].kana, people["田中 恵美"].birth_year, people["田中 恵美"].relation) == ("タナカ エミ", 1948, "spouse")
    assert (people["田中 蒼"].kana, people["田中 蒼"].birth_year, people["田中 蒼"].relation) == ("タナカ アオイ", 1989, "child")
    assert (people["山田 翔"].birth_year, people["山田 翔"].relation, people["山田 翔"].age_band) == (2019, "grandchild", "under_18")
    assert (people["山田 花子"].birth_year, people["山田 花子"].relation) == (1950, "head")
    # nothing of the 個人番号 reached the database
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM neighborhoods_resident r JOIN neighborhoods_household h ON h.id = r.household_id "
                       "WHERE h.municipality_id = %s AND (r::text LIKE '%%123456789012%%' OR h::text LIKE '%%123456789012%%')", [town.pk])
        assert cursor.fetchone()[0] == 0


def test_the_household_takes_the_head_row_of_its_group(town, tmp_path):
    header = ["世帯番号", "氏名", "続柄", "住所", "世帯人数"]
    rows = [["1", "山田 翔", "孫", "北栄町田井50", "2"], ["1", "山田 花子", "世帯主", "北栄町田井50", "3"]]

    run("import_households", str(write_csv(tmp_path / "h.csv", header, rows)), municipality=town.code)

    assert Household.objects.get(municipality=town).member_count == 3


def test_a_separate_residents_file_with_japanese_headers(town, tmp_path):
    households = write_csv(tmp_path / "h.csv", ISSUE_HEADER, [["10", "北栄町由良宿1", "", "", "2"]])
    residents = write_csv(tmp_path / "r.csv", ["世帯番号", "氏名", "フリガナ", "生年月日", "続柄"], [
        ["10", "佐藤 一郎", "さとう いちろう", "昭和30年1月1日", "世帯主"],
        ["10", "佐藤 二郎", "ｻﾄｳ ｼﾞﾛｳ", "H2.2.2", "弟"],
    ], encoding="cp932")

    out = run("import_households", str(households), municipality=town.code, residents=str(residents))

    assert "residents (r.csv): 2 created" in out
    people = dict(Resident.objects.filter(municipality=town).values_list("name", "relation"))
    assert people == {"佐藤 一郎": "head", "佐藤 二郎": "sibling"}
    assert Resident.objects.get(name="佐藤 一郎").kana == "サトウ イチロウ"


def test_column_option_and_mapping_file(town, tmp_path):
    header = ["コード", "住所１", "建物", "北緯", "東経"]
    path = write_csv(tmp_path / "h.csv", header, [["A1", "北栄町由良宿1", "101号", "35.5", "133.7"]])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[columns]\nexternal_id = "コード"\naddress = "住所１"\naddress_detail = "建物"\n', encoding="utf-8")

    run("import_households", str(path), municipality=town.code, mapping=str(mapping),
        column=["lat=北緯", "lon = 東経"])

    h = Household.objects.get(municipality=town)
    assert (h.external_id, h.address, h.location.y, h.location.x) == ("A1", "北栄町由良宿1 101号", 35.5, 133.7)


def test_the_column_option_wins_over_the_mapping_file_and_the_usual_headers(town, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["世帯番号", "住所", "旧住所"], [["1", "北栄町由良宿1", "北栄町田井2"]])
    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\naddress = "住所"\n', encoding="utf-8")

    run("import_households", str(path), municipality=town.code, mapping=str(mapping), column=["address=旧住所"])

    assert Household.objects.get(municipality=town).address == "北栄町田井2"


def test_the_residents_table_of_the_mapping_file(town, tmp_path):
    households = write_csv(tmp_path / "h.csv", ["世帯番号", "住所"], [["1", "北栄町由良宿1"]])
    residents = write_csv(tmp_path / "r.csv", ["setai", "shimei"], [["1", "佐藤 一郎"]])
    mapping = tmp_path / "m.toml"
    mapping.write_text('[residents]\nhousehold_external_id = "setai"\nname = "shimei"\n', encoding="utf-8")

    run("import_households", str(households), municipality=town.code, residents=str(residents), mapping=str(mapping))

    assert Resident.objects.get(municipality=town).name == "佐藤 一郎"


# --- bad input: refused with file and line, nothing written ---------------------------------------


def refused(town, path, **options) -> str:
    with pytest.raises(CommandError) as excinfo:
        run("import_households", str(path), municipality=town.code, **options)
    assert not Household.objects.filter(municipality=town).exists()
    assert not Resident.objects.filter(municipality=town).exists()
    return message_of(excinfo)


def test_a_mapping_naming_a_missing_column(town, tmp_path):
    path = write_csv(tmp_path / "h.csv", ISSUE_HEADER, [["1", "北栄町由良宿1", "", "", ""]])

    message = refused(town, path, column=["address=所在地"])

    assert "h.csv:1: mapping names column '所在地' which the file does not have (--column) (found: 世帯番号, 住所" in message


def test_a_mapping_file_with_a_bad_key_names_its_line(town, tmp_path):
    path = write_csv(tmp_path / "h.csv", ISSUE_HEADER, [["1", "北栄町由良宿1", "", "", ""]])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('# ours = "theirs"\n[columns]\nexternal_id = "世帯番号"\nadress = "住所"\n\n[people]\nname = "x"\n',
                       encoding="utf-8")

    message = refused(town, path, mapping=str(mapping))

    assert "mapping.toml:4: [columns] 'adress' is not a field we read (known: external_id, address," in message
    assert "mapping.toml:6: unknown table [people]" in message


@pytest.mark.parametrize(("text", "expected"), [
    ('[columns]\naddress = \n', "mapping.toml:2: not valid TOML: "),
    ('[columns]\naddress = 3\n', "mapping.toml:2: [columns] address: must be the column's header, as text"),
    ('address = "住所"\n', "mapping.toml:1: 'address' is outside a table; put it under [columns]"),
])
def test_a_mapping_file_that_is_not_a_mapping(town, tmp_path, text, expected):
    path = write_csv(tmp_path / "h.csv", ISSUE_HEADER, [["1", "北栄町由良宿1", "", "", ""]])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(text, encoding="utf-8")

    assert expected in refused(town, path, mapping=str(mapping))


def test_a_column_option_for_a_field_we_do_not_read(town, tmp_path):
    path = write_csv(tmp_path / "h.csv", ISSUE_HEADER, [["1", "北栄町由良宿1", "", "", ""]])

    assert "'adress' is not a field we read" in refused(town, path, column=["adress=住所"])
    assert "expected ours=theirs" in refused(town, path, column=["住所"])


def test_a_mapping_may_never_read_a_my_number(town, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["世帯番号", "住所", "住民票コード"], [["1", "北栄町由良宿1", "12345678901"]])

    message = refused(town, path, column=["external_id=住民票コード"])

    assert "h.csv:1: external_id: column '住民票コード' holds a 個人番号 or 住民票コード, which is never read or stored" in message


def test_two_columns_that_mean_the_same_field_must_be_chosen_between(town, tmp_path):
    path = write_csv(tmp_path / "h.csv", ["世帯番号", "住所", "所在地"], [["1", "北栄町由良宿1", "北栄町田井2"]])

    message = refused(town, path)

    assert "h.csv:1: columns '住所' and '所在地' both mean address; choose one with --column address=…" in message


def test_every_bad_row_is_refused_with_its_line(town, tmp_path):
    rows = [
        ["1", "鳥取県倉吉市葵町1", "", "", "2"],  # another municipality
        ["2", "鳥取県東伯郡北栄町由良宿2", "", "", "0"],
        ["3", "北栄町由良宿3", "", "", "500"],
        ["4", "北栄町\x07由良宿4", "", "", ""],
        ["5", "北栄町由良宿5", "", "", "三人"],
        ["6", "岡山県岡山市北区1", "", "", ""],
    ]
    path = write_csv(tmp_path / "h.csv", ISSUE_HEADER, rows)

    message = refused(town, path)

    for expected in [
        "h.csv:2: 住所: '鳥取県倉吉市葵町1' is in 鳥取県倉吉市, not in 鳥取県北栄町",
        "h.csv:3: 世帯人数: 0 is out of range (1..99)",
        "h.csv:4: 世帯人数: 500 is out of range (1..99)",
        "h.csv:5: 住所: contains a control or bidirectional-formatting character (U+0007)",
        "h.csv:6: 世帯人数: '三' is not a whole number",
        "h.csv:7: 住所: '岡山県岡山市北区1' is in 岡山県",
    ]:
        assert expected in message
    assert "6 problems" in message


def test_bad_people_rows_are_refused_with_their_line(town, tmp_path):
    rows = [
        ["1", "田中 秀樹", "ﾀﾅｶ", "平成31年5月1日", "世帯主", "", "", "北栄町由良宿1", ""],
        ["1", "田中 恵美", "ﾀﾅｶ", "昭和64年1月8日", "妻", "", "", "北栄町由良宿1", ""],
        ["1", "田中 蒼", "ﾀﾅｶ", "S50.2.30", "長男", "", "", "北栄町由良宿1", ""],
        ["1", "田中 凛", "ﾀﾅｶ", "R1.5.1", "長女", "", "", "北栄町由良宿9", ""],
        ["2", "", "ﾀﾅｶ\u202e", "1889/12/31", "", "", "", "北栄町由良宿2", ""],
        ["3", "山田 一", "", f"{timezone.localdate().year + 1}/1/1", "", "", "", "北栄町由良宿3", ""],
    ]
    path = write_csv(tmp_path / "juki.csv", JUKI_HEADER, rows)

    message = refused(town, path)

    for expected in [
        "juki.csv:2: 生年月日: '平成31年5月1日' does not exist (平成 ended on 2019-04-30; that day is 令和元年5月1日)",
        "juki.csv:3: 生年月日: '昭和64年1月8日' does not exist (昭和 ended on 1989-01-07",
        "juki.csv:4: 生年月日: 'S50.2.30' does not exist (there is no 2月30日 in 1975)",
        "juki.csv:5: 住所: '北栄町由良宿9' differs from line 2 ('北栄町由良宿1') of the same 世帯番号 '1'",
        "juki.csv:6: 氏名: is required",
        "juki.csv:6: カナ: contains a control or bidirectional-formatting character (U+202E)",
        "juki.csv:6: 生年月日: '1889/12/31' (1889-12-31) is before 1890-01-01",
        "juki.csv:7: 生年月日: ",
    ]:
        assert expected in message


def test_residents_in_both_the_household_file_and_a_residents_file_are_refused(town, tmp_path):
    path = write_csv(tmp_path / "juki.csv", JUKI_HEADER, JUKI)
    residents = write_csv(tmp_path / "r.csv", ["世帯番号", "氏名"], [["0001", "田中 秀樹"]])

    assert "give no --residents file" in refused(town, path, residents=str(residents))


def test_skip_invalid_and_dry_run_with_a_per_person_extract(town, tmp_path):
    rows = [*JUKI, ["0003", "鈴木 一", "", "平成31年5月1日", "世帯主", "", "", "北栄町由良宿3", ""]]
    path = write_csv(tmp_path / "juki.csv", JUKI_HEADER, rows)

    assert "juki.csv:7: 生年月日: '平成31年5月1日' does not exist" in refused(town, path, dry_run=True)
    out = run("import_households", str(path), municipality=town.code, dry_run=True, skip_invalid=True)
    assert "households: 2 created, 0 updated, 0 unchanged, 1 skipped" in out
    assert "dry run: nothing was written" in out
    assert not Household.objects.filter(municipality=town).exists()

    out = run("import_households", str(path), municipality=town.code, skip_invalid=True)

    assert "juki.csv:7: 生年月日: '平成31年5月1日' does not exist" in out
    assert sorted(Household.objects.filter(municipality=town).values_list("external_id", flat=True)) == ["0001", "0002"]
    assert Resident.objects.filter(municipality=town).count() == 5


# --- the merge -------------------------------------------------------------------------------------


def test_an_unchanged_reimport_writes_nothing(town, tmp_path):
    path = write_csv(tmp_path / "juki.csv", JUKI_HEADER, JUKI, encoding="cp932")
    run("import_households", str(path), municipality=town.code)
    before, histories = xmins(town), history_count()

    out = run("import_households", str(path), municipality=town.code)

    assert "households: 0 created, 0 updated, 2 unchanged, 0 skipped" in out
    assert "residents: 0 created, 0 updated, 5 unchanged, 0 skipped" in out
    assert xmins(town) == before
    assert history_count() == histories


def test_a_row_without_coordinates_never_clears_a_point(town, tmp_path):
    with_point = write_csv(tmp_path / "a.csv", ISSUE_HEADER, [["1", "北栄町由良宿1", "35.5", "133.7", ""],
                                                             ["2", "北栄町由良宿2", "35.6", "133.8", ""]])
    run("import_households", str(with_point), municipality=town.code)
    Household.objects.filter(municipality=town, external_id="2").update(match_level="manual")

    without = write_csv(tmp_path / "b.csv", ISSUE_HEADER, [["1", "北栄町由良宿1", "", "", "2"],
                                                           ["2", "北栄町由良宿2", "", "", ""]])
    out = run("import_households", str(without), municipality=town.code)

    assert "households: 0 created, 1 updated, 1 unchanged" in out
    one, two = Household.objects.filter(municipality=town).order_by("external_id")
    assert (one.location.x, one.location.y, one.match_level, one.member_count) == (133.7, 35.5, "coordinates", 2)
    assert (two.location.x, two.location.y, two.match_level) == (133.8, 35.6, "manual")

    moved = write_csv(tmp_path / "c.csv", ISSUE_HEADER, [["2", "北栄町由良宿2", "35.61", "133.81", ""]])
    run("import_households", str(moved), municipality=town.code)
    two = Household.objects.get(pk=two.pk)
    assert (two.location.x, two.location.y, two.match_level) == (133.81, 35.61, "coordinates")


def test_columns_a_file_lacks_are_left_alone(town, tmp_path):
    full = write_csv(tmp_path / "a.csv", ["external_id", "address", "risk_flags", "status", "member_count"],
                     [["1", "北栄町由良宿1", "8050", "vacant", "4"]])
    run("import_households", str(full), municipality=town.code)
    before = Household.objects.get(municipality=town)

    out = run("import_households", str(write_csv(tmp_path / "b.csv", ISSUE_HEADER[:2], [["1", "北栄町由良宿1"]])),
              municipality=town.code)

    after = Household.objects.get(pk=before.pk)
    assert "0 updated, 1 unchanged" in out
    assert (after.risk_flags, after.status, after.member_count, after.version) == (["8050"], "vacant", 4, before.version)


def test_resident_columns_a_file_lacks_are_left_alone(town, tmp_path):
    households = write_csv(tmp_path / "h.csv", ISSUE_HEADER[:2], [["1", "北栄町由良宿1"]])
    residents = write_csv(tmp_path / "r.csv", ["世帯番号", "氏名", "生年月日", "flags"], [["1", "佐藤 一郎", "S30.1.1", "dementia"]])
    run("import_households", str(households), municipality=town.code, residents=str(residents))
    before = Resident.objects.get(municipality=town)

    names_only = write_csv(tmp_path / "r2.csv", ["世帯番号", "氏名", "続柄"], [["1", "佐藤 一郎", "世帯主"]])
    out = run("import_households", str(households), municipality=town.code, residents=str(names_only))

    after = Resident.objects.get(pk=before.pk)
    assert "residents (r2.csv): 0 created, 1 updated, 0 unchanged" in out
    assert (after.birth_year, after.flags, after.relation, after.version) == (1955, ["dementia"], "head", before.version + 1)


def test_a_merged_household_is_left_alone(town, tmp_path):
    path = write_csv(tmp_path / "a.csv", ["世帯番号", "住所", "氏名"], [["1", "北栄町由良宿1", "佐藤 一郎"], ["2", "北栄町由良宿1", "佐藤 一郎"]])
    run("import_households", str(path), municipality=town.code)
    keep, gone = Household.objects.filter(municipality=town).order_by("external_id")
    Household.objects.filter(pk=gone.pk).update(merged_into=keep, merged_at=timezone.now())
    Resident.objects.filter(household=gone).delete()
    before = xmins(town)

    changed = write_csv(tmp_path / "b.csv", ["世帯番号", "住所", "氏名"], [["1", "北栄町由良宿1", "佐藤 一郎"], ["2", "北栄町由良宿99", "佐藤 一郎"]])
    out = run("import_households", str(changed), municipality=town.code)

    assert "households: 0 created, 0 updated, 1 unchanged, 0 skipped, 1 left alone (merged into another household)" in out
    assert "residents: 0 created, 0 updated, 1 unchanged, 0 skipped, 1 left alone" in out
    assert Household.objects.get(pk=gone.pk).address == "北栄町由良宿1"
    assert not Resident.objects.filter(household=gone).exists()
    assert xmins(town) == before


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_new_file_at_once_create_each_household_once(tmp_path):
    town = hokuei(None)
    path = write_csv(tmp_path / "juki.csv", JUKI_HEADER, JUKI)
    first_wrote = threading.Event()
    outputs: dict[str, str] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                outputs["first"] = run("import_households", str(path), municipality=town.code, progress=False)
                first_wrote.set()
                time.sleep(1)  # the second import starts and waits on our uncommitted rows
        finally:
            first_wrote.set()
            connection.close()

    def second() -> None:
        try:
            assert first_wrote.wait(timeout=60)
            outputs["second"] = run("import_households", str(path), municipality=town.code, progress=False)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(first), pool.submit(second)]:
            future.result(timeout=120)

    assert "households: 2 created, 0 updated, 0 unchanged" in outputs["first"]
    assert "households: 0 created, 0 updated, 2 unchanged" in outputs["second"]
    assert "residents: 0 created, 0 updated, 5 unchanged" in outputs["second"]
    assert Household.objects.filter(municipality=town).count() == 2
    assert Resident.objects.filter(municipality=town).count() == 5
