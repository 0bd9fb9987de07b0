"""Addresses in one spelling, offline: the rules that turn what a municipal system (or a person)
wrote into the keys the address reference is indexed by.

    鳥取県東伯郡北栄町大字西園５２１番地１  ->  town "西園",      block "521", residence "1"
    中央三丁目5番12号 コーポ山田201号       ->  town "中央3丁目", block "5",   residence "12", rest "コーポ山田201号"

The rules, in order:
1. NFKC: full-width digits, letters, spaces and the full-width hyphen become half-width.
2. The prefecture, the 郡 and the name of THIS municipality are stripped from the front (an address
   of another municipality is refused earlier, by `other_municipality`).
3. A leading 大字 (or 字) is dropped: "大字西園" = "西園". A 小字 after the 大字 ("西園字上ノ段") is kept
   off the key when the reference knows the 大字 alone (or, without a reference, when the address
   said 大字): 小字 are often left out of household lists.
4. The town name ends at the first number: ASCII digits, or kanji numerals followed by 丁目, 番地,
   番 or 号 (so the numerals of names such as 三本松 or 八幡 stay). Kanji numerals are read
   (三 = 3, 十二 = 12, 二〇五 = 205).
5. The numbers: 丁目 (三丁目 / 3丁目 / "3-" in a town divided into 丁目), then the 街区符号 or the
   地番's 親番 (block), then the 住居番号 or the 地番's 枝番 (residence). 番地, 番, 号, の and every
   hyphen variant (- ‐ ‑ – — ― ─ − ｰ ー after a number; 〜 is not one) separate them.
6. What follows the numbers (方書: building, room) is `rest`: kept in the canonical string (two
   flats of one building are two households) but never used for matching.

Without 丁目 written out, "中央3-5-12" is ambiguous (3丁目5番12号, or 地番 3-5 and a room 12). The
reference decides when it is given (`towns`: the reference's town keys; a town the reference
divides into 丁目 reads its first number as the 丁目); without it, three numbers or more read the
first as the 丁目. Placement always passes the reference, so `address_normalized` is stable for a
municipality's data.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

from neighborhoods.municipality_code import PREFECTURES


def other_municipality(address: str, *, prefecture: str, name: str) -> str | None:
    """The prefecture or prefecture+city an address names when that is not this municipality
    (`prefecture`, `name` as Municipality holds them), or None: the address names this
    municipality, or names no prefecture at all (a list that starts at the 大字 is normal)."""
    text = unicodedata.normalize("NFKC", address).strip()
    named = next((p for p in PREFECTURES if text.startswith(p)), None)
    if named is None:
        return None
    if named != prefecture:
        return named
    rest = text[len(named):]
    if rest.startswith(name):
        return None
    gun = rest.find("郡")  # 東伯郡北栄町: a town or village is named after its 郡
    if 0 < gun <= 5 and rest[gun + 1 :].startswith(name):
        return None
    for suffix in ("市", "町", "村"):
        end = rest.find(suffix)
        if 0 < end <= 8:
            return named + rest[: end + 1]
    return named


# ---------------------------------------------------------------------------------------------
# Kanji numerals

_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
_KANJI_NUMERALS = "".join(_KANJI_DIGITS) + "".join(_KANJI_UNITS)


def kanji_to_int(text: str) -> int | None:
    """三 -> 3, 十二 -> 12, 二十三 -> 23, 百五 -> 105, 二〇五 -> 205 (digit by digit); None when
    `text` is not a kanji numeral."""
    if not text or any(c not in _KANJI_NUMERALS for c in text):
        return None
    if not any(c in _KANJI_UNITS for c in text):
        return int("".join(str(_KANJI_DIGITS[c]) for c in text))
    total = current = 0
    for c in text:
        if c in _KANJI_DIGITS:
            current = current * 10 + _KANJI_DIGITS[c] if current else _KANJI_DIGITS[c]
        else:
            total += (current or 1) * _KANJI_UNITS[c]
            current = 0
    return total + current


# ---------------------------------------------------------------------------------------------
# Parsing

# Dashes that mean "-" between numbers (after NFKC: the full-width hyphen is already "-", and the
# half-width prolonged sound mark is "ー"). 〜 is a range, never a separator.
_HYPHENS = "-‐‑‒–—―─━−ー"
_UNITS = ("丁目", "番地", "番", "号")
_NUMBER = re.compile(rf"([0-9]+|[{_KANJI_NUMERALS}]+)")
_KANJI_NUMBER_UNIT = re.compile(rf"[{_KANJI_NUMERALS}]+(?:丁目|番地|番|号)")
_SPACES = re.compile(r"\s+")
_CHOME_KEY = re.compile(r"^(.*?)([0-9]+)丁目$")


@dataclass(frozen=True)
class NormalizedAddress:
    """The keys of an address: `town` (大字・町 name with its 丁目 as a number: "中央3丁目"),
    `block` (街区符号 or 地番's 親番), `residence` (住居番号 or 枝番), and `rest` (方書, not matched)."""

    town: str
    block: str = ""
    residence: str = ""
    rest: str = ""

    @property
    def canonical(self) -> str:
        """One string per address, for duplicates: 中央3丁目5-12, 西園521-1 コーポ山田201号."""
        text = self.town + self.block
        if self.residence:
            text += f"-{self.residence}"
        if self.rest:
            text += f" {self.rest}"
        return text[:300]


def strip_municipality(text: str, *, prefecture: str, name: str) -> str:
    """`text` (NFKC) without this municipality's prefecture, 郡 and name in front."""
    if prefecture and text.startswith(prefecture):
        text = text[len(prefecture):]
    if name:
        if text.startswith(name):
            return text[len(name):]
        gun = text.find("郡")
        if 0 < gun <= 5 and text[gun + 1 :].startswith(name):
            return text[gun + 1 + len(name):]
    return text


def normalize_address(address: str, *, prefecture: str = "", name: str = "",
                      towns: Collection[str] | None = None) -> NormalizedAddress:
    """The keys of `address` of the municipality (`prefecture`, `name`). `towns`: the town keys of
    the municipality's reference, which settle what the address alone cannot (see the module)."""
    text = unicodedata.normalize("NFKC", address).strip()
    text = strip_municipality(text, prefecture=prefecture, name=name)
    start = _numbers_start(text)
    head, tail = text[:start], text[start:]
    head = _SPACES.sub("", head)
    said_oaza = head.startswith("大字")
    if said_oaza:
        head = head[2:]
    elif head.startswith("字") and len(head) > 1:
        head = head[1:]
    town = _drop_koaza(head, said_oaza=said_oaza, towns=towns)
    numbers, rest = _read_numbers(tail)
    return _assign(town, numbers, rest, towns)


def normalize_town(name: str) -> str:
    """A reference file's 大字・町丁目 name as a town key: 大字西園 -> 西園, 中央三丁目 -> 中央3丁目."""
    parsed = normalize_address(name)
    if parsed.block or parsed.rest:  # a name with other numbers in it (第2地割 …): keep it whole
        return _SPACES.sub("", unicodedata.normalize("NFKC", name))
    return parsed.town


def normalize_number(value: str) -> str:
    """A 街区符号, 地番 or 住居番号 as a key: "０５" -> "5", "十二" -> "12", "521-1" -> "521";
    anything else (イ, A) as written (NFKC, no spaces)."""
    text = _SPACES.sub("", unicodedata.normalize("NFKC", value))
    kanji = kanji_to_int(text)
    if kanji is not None:
        return str(kanji)
    numbers, _rest = _read_numbers(text)
    if numbers:
        return str(numbers[0][0])
    return text


def _numbers_start(text: str) -> int:
    """Where the numbers begin: the first ASCII digit, or the first kanji numeral followed by a
    number unit (三丁目, 十二番地), whichever comes first; len(text) when there is none."""
    digit = next((i for i, c in enumerate(text) if c.isascii() and c.isdigit()), len(text))
    kanji = _KANJI_NUMBER_UNIT.search(text)
    return min(digit, kanji.start()) if kanji else digit


def _drop_koaza(head: str, *, said_oaza: bool, towns: Collection[str] | None) -> str:
    cut = head.find("字", 1)
    if cut <= 0:
        return head
    oaza = head[:cut]
    if towns is not None:
        if head in towns or _is_chome_base(head, towns):
            return head
        if oaza in towns or _is_chome_base(oaza, towns):
            return oaza
        return head
    return oaza if said_oaza else head


def _read_numbers(tail: str) -> tuple[list[tuple[int, str]], str]:
    """The numbers at the front of `tail`, each with the unit written after it ("" when none), and
    what follows them (方書)."""
    numbers: list[tuple[int, str]] = []
    i = 0
    while i < len(tail):
        match = _NUMBER.match(tail, i)
        if match is None:
            break
        raw = match.group(1)
        value = int(raw) if raw.isascii() else kanji_to_int(raw)
        after = match.end()
        unit = next((u for u in _UNITS if tail.startswith(u, after)), "")
        if value is None or (not raw.isascii() and not unit and not numbers):
            break
        if not raw.isascii() and not unit and numbers and numbers[-1][1] == "号":
            break  # 号 ends the numbers: what follows is the 方書 (三号棟 …)
        numbers.append((value, unit))
        i = after + len(unit)
        if unit == "号":
            # the residence: anything after it is 方書, except a "-" branch ("12号の3" is rare; stop)
            break
        if i < len(tail) and (tail[i] in _HYPHENS or tail[i] == "の"):
            if _NUMBER.match(tail, i + 1):
                i += 1
                continue
            break
        if unit in ("丁目", "番地", "番"):
            # a unit written out may be followed by a space before the next number: 3丁目 5番 12号
            j = i
            while j < len(tail) and tail[j].isspace():
                j += 1
            if j < len(tail) and _NUMBER.match(tail, j):
                i = j
                continue
        break
    rest = _SPACES.sub("", tail[i:]).lstrip("".join(_HYPHENS) + "の")
    return numbers, rest


@lru_cache(maxsize=8)
def _chome_bases(towns: frozenset[str]) -> frozenset[str]:
    """The towns the reference divides into 丁目: 中央 for 中央1丁目, 中央2丁目 …"""
    return frozenset(m.group(1) for m in map(_CHOME_KEY.match, towns) if m)


def _is_chome_base(town: str, towns: Collection[str]) -> bool:
    return town in _chome_bases(frozenset(towns))


def _implied_chome(town: str, values: list[str], towns: Collection[str] | None) -> bool:
    """"中央3-5-12": the first number is the 丁目 when the reference has 中央3丁目 (without a
    reference: when three numbers are written)."""
    if towns is not None:
        return f"{town}{values[0]}丁目" in towns
    return len(values) >= 3


def _assign(town: str, numbers: list[tuple[int, str]], rest: str, towns: Collection[str] | None) -> NormalizedAddress:
    values = [str(v) for v, _unit in numbers]
    units = [u for _v, u in numbers]
    chome: str | None = None
    if "丁目" in units:
        at = units.index("丁目")
        chome, values = values[at], values[at + 1 :]
    elif len(values) >= 2 and units[0] == "" and _implied_chome(town, values, towns):
        chome, values = values[0], values[1:]
    if chome is not None:
        town = f"{town}{chome}丁目"
    block = values[0] if values else ""
    residence = values[1] if len(values) > 1 else ""
    extra = "-".join(values[2:])
    if extra:
        rest = f"{extra} {rest}".strip() if rest else extra
    return NormalizedAddress(town=town, block=block, residence=residence, rest=rest)
