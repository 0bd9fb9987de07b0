"""Japanese text as municipal systems write it, in one spelling: 全角/半角, kana, spaces, 和暦 dates
and 続柄 words. Pure functions, no database: the importers call them on every cell they read.

- Full-width ASCII (ＡＢＣ１２３－) becomes half-width; half-width kana (ｶﾞ) becomes full-width;
  the ideographic space (U+3000) becomes one ASCII space and runs of spaces become one. This is
  done with `jaconv` rather than NFKC, because NFKC also rewrites characters a municipality spells
  on purpose (① → 1, ㈱ → (株), ｰ in a 方書 …); NFKC is used only where every character it
  touches is meant to be plain (dates, header names).
- カナ fields are full-width katakana (hiragana → katakana).
- Dates: 西暦 (1950/3/1, 1950-03-01, 1950年3月1日, 19500301) and 和暦 (昭和25年3月1日, 平成元年1月8日,
  S25.3.1, R1/5/1, 昭25.3.1, and the 7-digit era code 3250301 that 住民記録 systems export). An era
  date that lies outside its era (平成31年5月1日, 昭和64年1月8日) does not exist and is refused, as is
  a day that no month has (2月30日).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

import jaconv

# ---------------------------------------------------------------------------------------------
# Width, kana and spaces

_SPACES = re.compile(r" {2,}")


def squeeze_spaces(text: str) -> str:
    """Ideographic spaces → ASCII, runs of spaces → one, trimmed. Tabs and line breaks are left
    for the caller's text rule to refuse."""
    return _SPACES.sub(" ", text.replace("\u3000", " ")).strip(" ")


def to_halfwidth_ascii(text: str) -> str:
    """Full-width ASCII letters, digits and signs (Ａ１－) → half-width; nothing else changes."""
    return jaconv.z2h(text, kana=False, ascii=True, digit=True)


def to_fullwidth_kana(text: str) -> str:
    """Half-width katakana (ﾀﾅｶ ﾋﾃﾞｷ, voiced marks joined) → full-width; nothing else changes."""
    return jaconv.h2z(text, kana=True, ascii=False, digit=False)


def normalize_text(text: str) -> str:
    """A name, an address or a code: half-width ASCII, full-width kana, one space between words.
    Kanji and symbols (髙, ①, 〒) stay as written."""
    return squeeze_spaces(to_fullwidth_kana(to_halfwidth_ascii(text)))


def normalize_kana(text: str) -> str:
    """A フリガナ: full-width katakana (hiragana and half-width kana included), one space."""
    return jaconv.hira2kata(normalize_text(text))


def normalize_code(text: str) -> str:
    """An identifier (世帯番号): half-width, no spaces at the ends; leading zeros kept."""
    return to_halfwidth_ascii(text).replace("\u3000", " ").strip()


# ---------------------------------------------------------------------------------------------
# 和暦


@dataclass(frozen=True)
class Era:
    name: str
    letter: str  # the romaji initial used in abbreviations (S25.3.1)
    code: int  # the first digit of the 7-digit era code (1 = 明治 … 5 = 令和)
    start: dt.date  # its first day (元年 is the year of this date)
    end: dt.date | None  # its last day


# Five eras with their first and last days. A table rather than a library (japanera exists but
# is little used and brings its own calendar data): these dates are fixed history, and a birth
# date before 1890 is refused anyway, so the lunar-calendar years of early 明治 never arise.
ERAS = (
    Era("明治", "M", 1, dt.date(1868, 10, 23), dt.date(1912, 7, 29)),
    Era("大正", "T", 2, dt.date(1912, 7, 30), dt.date(1926, 12, 24)),
    Era("昭和", "S", 3, dt.date(1926, 12, 25), dt.date(1989, 1, 7)),
    Era("平成", "H", 4, dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
    Era("令和", "R", 5, dt.date(2019, 5, 1), None),
)
_ERA_BY_NAME = {
    **{e.name: e for e in ERAS},
    **{e.name[0]: e for e in ERAS},  # 昭25.3.1
    **{e.letter: e for e in ERAS},
}

_ERA_DATE = re.compile(
    r"^(?P<era>明治|大正|昭和|平成|令和|[明大昭平令MTSHR])\.?\s*(?P<year>元|\d{1,2})\s*"
    r"(?:年\s*(?P<m1>\d{1,2})\s*月\s*(?P<d1>\d{1,2})\s*日?|[./\-]\s*(?P<m2>\d{1,2})\s*[./\-]\s*(?P<d2>\d{1,2}))$"
)
_WESTERN_DATE = re.compile(
    r"^(?P<year>\d{4})\s*(?:年\s*(?P<m1>\d{1,2})\s*月\s*(?P<d1>\d{1,2})\s*日?|[./\-]\s*(?P<m2>\d{1,2})\s*[./\-]\s*(?P<d2>\d{1,2}))$"
)
_COMPACT_WESTERN = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_ERA_CODE = re.compile(r"^([1-5])(\d{2})(\d{2})(\d{2})$")


class NotADate(ValueError):
    """The text is not a date, or names one that does not exist; str() says why, in the users' words."""


def era_label(era: Era, year: int) -> str:
    return f"{era.name}{'元' if year == 1 else year}年"


def western_to_era(day: dt.date) -> str:
    """2019-05-01 → 令和元年5月1日."""
    era = next(e for e in reversed(ERAS) if e.start <= day)
    return f"{era_label(era, day.year - era.start.year + 1)}{day.month}月{day.day}日"


def parse_date(text: str, *, earliest: dt.date | None = None, latest: dt.date | None = None) -> dt.date:
    """A date in any of the module's spellings. Raises NotADate naming what is wrong."""
    value = unicodedata.normalize("NFKC", text).strip().upper()
    era_match = _ERA_DATE.match(value)
    if era_match:
        era = _ERA_BY_NAME[era_match["era"]]
        year = 1 if era_match["year"] == "元" else int(era_match["year"])
        month, day = int(era_match["m1"] or era_match["m2"]), int(era_match["d1"] or era_match["d2"])
        result = _era_date(era, year, month, day, text)
    elif (code := _ERA_CODE.match(value)) is not None:
        era = next(e for e in ERAS if e.code == int(code[1]))
        result = _era_date(era, int(code[2]), int(code[3]), int(code[4]), text)
    else:
        western = _WESTERN_DATE.match(value) or _COMPACT_WESTERN.match(value)
        if western is None:
            raise NotADate(f"{text!r} is not a date (e.g. 1950-03-01, 昭和25年3月1日, S25.3.1)")
        if western.re is _COMPACT_WESTERN:
            year, month, day = (int(g) for g in western.groups())
        else:
            year, month, day = int(western["year"]), int(western["m1"] or western["m2"]), int(western["d1"] or western["d2"])
        result = _calendar_date(year, month, day, text)
    if earliest is not None and result < earliest:
        raise NotADate(f"{text!r} ({result.isoformat()}) is before {earliest.isoformat()}")
    if latest is not None and result > latest:
        raise NotADate(f"{text!r} ({result.isoformat()}) is after {latest.isoformat()}")
    return result


def _calendar_date(year: int, month: int, day: int, text: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise NotADate(f"{text!r} does not exist (there is no {month}月{day}日 in {year})") from None


def _era_date(era: Era, year: int, month: int, day: int, text: str) -> dt.date:
    if year < 1:
        raise NotADate(f"{text!r} does not exist (an era starts at 元年)")
    result = _calendar_date(era.start.year + year - 1, month, day, text)
    if result < era.start:
        raise NotADate(f"{text!r} does not exist ({era.name} began on {era.start.isoformat()}; that day is {western_to_era(result)})")
    if era.end is not None and result > era.end:
        raise NotADate(f"{text!r} does not exist ({era.name} ended on {era.end.isoformat()}; that day is {western_to_era(result)})")
    return result


# ---------------------------------------------------------------------------------------------
# 続柄

# The values are neighborhoods.models.Relation's (a test checks that they stay so).
_RELATION_WORDS = {
    "世帯主": "head", "本人": "head",
    "妻": "spouse", "夫": "spouse", "配偶者": "spouse", "妻(未届)": "spouse", "夫(未届)": "spouse",
    "子": "child", "養子": "child", "養女": "child", "男": "child", "女": "child",
    "父": "parent", "母": "parent", "養父": "parent", "養母": "parent", "父母": "parent",
    "孫": "grandchild",
    "兄": "sibling", "弟": "sibling", "姉": "sibling", "妹": "sibling", "兄弟": "sibling", "姉妹": "sibling",
}
# 長男, 長女, 二男, 次女, 三男, 4男 …: a child by birth order.
_NUMBERED_CHILD = re.compile(r"^(?:長|次|[一二三四五六七八九十]+|\d+)[男女]$")


def relation_for(word: str) -> str:
    """The relation of a 続柄 as 住民記録 writes it (relative to the 世帯主): 世帯主/本人 → head,
    妻/夫 → spouse, 子/長男/次女 … → child, 父/母 → parent, 孫 → grandchild, 兄弟姉妹 → sibling;
    anything else (子の妻, 妻の母, 同居人, 縁故者 …) → other."""
    key = unicodedata.normalize("NFKC", word).replace(" ", "").removeprefix("世帯主の")
    if key in _RELATION_WORDS:
        return _RELATION_WORDS[key]
    return "child" if _NUMBERED_CHILD.match(key) else "other"
