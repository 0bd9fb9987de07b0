"""The address normaliser on real address shapes (住居表示 and 地番, kanji and full-width numbers)."""

import pytest

from addresses.normalize import (
    NormalizedAddress,
    kanji_to_int,
    normalize_address,
    normalize_number,
    normalize_town,
    other_municipality,
)

TOWN = {"prefecture": "鳥取県", "name": "北栄町"}


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # 住居表示: 丁目 in kanji, digits or full width, 番・号 or hyphens
        ("鳥取県東伯郡北栄町中央三丁目5番12号", ("中央3丁目", "5", "12", "")),
        ("北栄町中央3丁目5-12", ("中央3丁目", "5", "12", "")),
        ("中央３丁目５－１２", ("中央3丁目", "5", "12", "")),
        ("中央二丁目十二番三号", ("中央2丁目", "12", "3", "")),
        ("中央3ー5ー12", ("中央3丁目", "5", "12", "")),
        ("中央3‐5‐12", ("中央3丁目", "5", "12", "")),
        # 方書 kept off the keys
        ("中央三丁目５－１２ コーポ山田２０１号", ("中央3丁目", "5", "12", "コーポ山田201号")),
        ("中央三丁目5番12号コーポ山田201号", ("中央3丁目", "5", "12", "コーポ山田201号")),
        # 地番: 大字 dropped, 番地・の・hyphen, full width
        ("大字西園521番地1", ("西園", "521", "1", "")),
        ("西園521-1", ("西園", "521", "1", "")),
        ("西園５２１－１", ("西園", "521", "1", "")),
        ("西園521番地の1", ("西園", "521", "1", "")),
        ("鳥取県東伯郡北栄町大字西園５２１番地１", ("西園", "521", "1", "")),
        ("北栄町由良宿１２３", ("由良宿", "123", "", "")),
        ("由良宿百二十三番地", ("由良宿", "123", "", "")),
        # numerals that belong to the name stay in it
        ("三本松12番地", ("三本松", "12", "", "")),
        ("八幡町一丁目3番地", ("八幡町1丁目", "3", "", "")),
        # no number at all: the town alone
        ("大字由良宿", ("由良宿", "", "", "")),
        # 小字 after 大字 is kept off the key when the address says 大字
        ("大字西園字上ノ段521", ("西園", "521", "", "")),
    ],
)
def test_real_address_shapes(address, expected):
    parsed = normalize_address(address, **TOWN)
    assert (parsed.town, parsed.block, parsed.residence, parsed.rest) == expected


@pytest.mark.parametrize(
    "spellings",
    [
        ["中央三丁目5番12号", "中央3-5-12", "鳥取県東伯郡北栄町中央３丁目５－１２", "北栄町 中央 3丁目 5番 12号"],
        ["大字西園521番地1", "西園521-1", "西園５２１－１", "東伯郡北栄町西園五二一番地の一"],
    ],
)
def test_one_household_written_several_ways_gives_one_canonical_string(spellings):
    assert len({normalize_address(s, **TOWN).canonical for s in spellings}) == 1


def test_canonical_string_keeps_the_room():
    a = normalize_address("中央三丁目5-12 コーポ山田201号", **TOWN).canonical
    b = normalize_address("中央三丁目5-12 コーポ山田202号", **TOWN).canonical
    assert a == "中央3丁目5-12 コーポ山田201号"
    assert a != b


def test_the_reference_decides_whether_the_first_number_is_the_chome():
    # 中央 divided into 丁目: 3-5 is 3丁目5番; a town of 地番: 3-5 is 地番 3, 枝番 5
    assert normalize_address("中央3-5", towns={"中央3丁目"}) == NormalizedAddress("中央3丁目", "5", "")
    assert normalize_address("中央3-5", towns={"中央"}) == NormalizedAddress("中央", "3", "5")
    # a 小字 the reference does not know is dropped, one it knows is kept
    assert normalize_address("西園字上ノ段521", towns={"西園"}).town == "西園"
    assert normalize_address("西園字上ノ段521", towns={"西園字上ノ段"}).town == "西園字上ノ段"


def test_another_municipality_is_not_stripped():
    parsed = normalize_address("鳥取県倉吉市葵町1", **TOWN)
    assert parsed.town == "倉吉市葵町"
    assert other_municipality("鳥取県倉吉市葵町1", prefecture="鳥取県", name="北栄町") == "鳥取県倉吉市"
    assert other_municipality("鳥取県東伯郡北栄町由良宿1", prefecture="鳥取県", name="北栄町") is None


@pytest.mark.parametrize(("kanji", "value"), [("三", 3), ("十", 10), ("十二", 12), ("二十三", 23), ("百五", 105),
                                               ("二〇五", 205), ("千二百三十四", 1234)])
def test_kanji_numerals(kanji, value):
    assert kanji_to_int(kanji) == value


def test_reference_names_and_numbers():
    assert normalize_town("中央三丁目") == "中央3丁目"
    assert normalize_town("大字西園") == "西園"
    assert normalize_town("由良宿") == "由良宿"
    assert normalize_number("０５") == "5"
    assert normalize_number("十二") == "12"
    assert normalize_number("521-1") == "521"
    assert normalize_number("イ") == "イ"
