"""backend.japanese: 全角/半角, kana, spaces, 和暦 dates and 続柄 words."""

import datetime as dt

import pytest

from backend import japanese
from neighborhoods.models import Relation


@pytest.mark.parametrize(("raw", "expected"), [
    ("ＡＢＣ１２３－４", "ABC123-4"),
    ("由良宿１２３－４", "由良宿123-4"),
    ("ｺｰﾎﾟ由良 101", "コーポ由良 101"),
    ("ﾀﾞｲｴｲ", "ダイエイ"),
    ("田中　　秀樹", "田中 秀樹"),
    ("  田中 \u3000 秀樹  ", "田中 秀樹"),
    ("髙江①5", "髙江①5"),  # kanji variants and circled digits are the municipality's own spelling
    ("㈱北栄", "㈱北栄"),
])
def test_normalize_text_fixes_width_and_spaces_but_keeps_the_spelling(raw, expected):
    assert japanese.normalize_text(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("たなか ひでき", "タナカ ヒデキ"),
    ("ﾀﾅｶ ﾋﾃﾞｷ", "タナカ ヒデキ"),
    ("ﾀﾅｶ　ﾋﾃﾞｷ", "タナカ ヒデキ"),
    ("タナカ　　ヒデキ", "タナカ ヒデキ"),
    ("ゆらしゅく１２３", "ユラシュク123"),
])
def test_normalize_kana_gives_full_width_katakana(raw, expected):
    assert japanese.normalize_kana(raw) == expected


def test_normalize_code_keeps_leading_zeros():
    assert japanese.normalize_code(" ００１２３ ") == "00123"


@pytest.mark.parametrize(("text", "expected"), [
    ("S25.3.1", dt.date(1950, 3, 1)),
    ("s25.3.1", dt.date(1950, 3, 1)),
    ("昭和25年3月1日", dt.date(1950, 3, 1)),
    ("昭和２５年３月１日", dt.date(1950, 3, 1)),
    ("昭25.3.1", dt.date(1950, 3, 1)),
    ("㍼25年3月1日", dt.date(1950, 3, 1)),
    ("平成元年1月8日", dt.date(1989, 1, 8)),
    ("H1.1.8", dt.date(1989, 1, 8)),
    ("R1/5/1", dt.date(2019, 5, 1)),
    ("令和元年5月1日", dt.date(2019, 5, 1)),
    ("大正15年12月24日", dt.date(1926, 12, 24)),
    ("昭和元年12月25日", dt.date(1926, 12, 25)),
    ("明治45年7月29日", dt.date(1912, 7, 29)),
    ("M23.1.1", dt.date(1890, 1, 1)),
    ("3250301", dt.date(1950, 3, 1)),  # 住民記録 era code: 3 = 昭和
    ("1950/3/1", dt.date(1950, 3, 1)),
    ("1950-03-01", dt.date(1950, 3, 1)),
    ("19500301", dt.date(1950, 3, 1)),
    ("1950年3月1日", dt.date(1950, 3, 1)),
    ("２０００／２／２９", dt.date(2000, 2, 29)),
])
def test_dates_in_every_spelling(text, expected):
    assert japanese.parse_date(text) == expected


@pytest.mark.parametrize(("text", "words"), [
    ("平成31年5月1日", "平成 ended on 2019-04-30; that day is 令和元年5月1日"),
    ("昭和64年1月8日", "昭和 ended on 1989-01-07; that day is 平成元年1月8日"),
    ("令和元年4月30日", "令和 began on 2019-05-01; that day is 平成31年4月30日"),
    ("大正15年12月25日", "大正 ended on 1926-12-24"),
    ("1950/2/30", "there is no 2月30日 in 1950"),
    ("S25.2.30", "there is no 2月30日 in 1950"),
    ("1900-02-29", "there is no 2月29日 in 1900"),
    ("H0.1.1", "an era starts at 元年"),
    ("昭和二十五年", "is not a date"),
    ("1950/13/1", "there is no 13月1日"),
    ("yesterday", "is not a date"),
])
def test_dates_that_do_not_exist_are_refused_saying_why(text, words):
    with pytest.raises(japanese.NotADate) as excinfo:
        japanese.parse_date(text)
    assert words in str(excinfo.value)


def test_the_window_is_checked():
    window = {"earliest": dt.date(1890, 1, 1), "latest": dt.date(2024, 6, 1)}
    assert japanese.parse_date("R6.6.1", **window) == dt.date(2024, 6, 1)
    with pytest.raises(japanese.NotADate, match="is after 2024-06-01"):
        japanese.parse_date("R6.6.2", **window)
    with pytest.raises(japanese.NotADate, match="is before 1890-01-01"):
        japanese.parse_date("M22.12.31", **window)


def test_western_to_era():
    assert japanese.western_to_era(dt.date(2019, 5, 1)) == "令和元年5月1日"
    assert japanese.western_to_era(dt.date(1989, 1, 7)) == "昭和64年1月7日"


@pytest.mark.parametrize(("word", "relation"), [
    ("世帯主", "head"), ("本人", "head"),
    ("妻", "spouse"), ("夫", "spouse"), ("配偶者", "spouse"), ("世帯主の妻", "spouse"),
    ("子", "child"), ("長男", "child"), ("長女", "child"), ("二男", "child"), ("次女", "child"),
    ("三男", "child"), ("４女", "child"), ("養子", "child"),
    ("父", "parent"), ("母", "parent"),
    ("孫", "grandchild"),
    ("兄", "sibling"), ("弟", "sibling"), ("姉", "sibling"), ("妹", "sibling"),
    ("子の妻", "other"), ("妻の母", "other"), ("同居人", "other"), ("縁故者", "other"), ("", "other"),
])
def test_relation_words(word, relation):
    assert japanese.relation_for(word) == relation


def test_relation_words_give_the_models_values():
    assert {japanese.relation_for(w) for w in (*japanese._RELATION_WORDS, "長男", "x")} <= set(Relation.values)
