"""全国地方公共団体コード (JIS X 0402): six digits, the prefecture (01..47, JIS X 0401), three for
the municipality, and a check digit.

The check digit (総務省): S = 6·d1 + 5·d2 + 4·d3 + 3·d4 + 2·d5, then the last digit of 11 − (S mod 11).
So a remainder of 0 gives 1 (鳥取市 31201 → 312011) and a remainder of 1 gives 0 (相模原市 14150 →
141500). Because remainders 0 and 10 both give 1, the digit misses the rare single-digit slip that
moves the remainder between them (312011 → 312061 is "valid" too): it catches typos, it does not
prove a code; the municipality's name is checked by the person who types it.

The codes come from people (a command's argument, a CSV column), so full-width digits are read
(NFKC), and a five-digit code, the same code without its check digit as many lists print it, is
refused with the full code in the message rather than completed silently: the check digit is the
only thing that catches a mistyped digit, and completing it would accept any typo.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.management.base import CommandError

from backend.errors import InvalidInput, NotFound, TsunaguError
from backend.tenancy import scope
from neighborhoods.models import Municipality

WEIGHTS = (6, 5, 4, 3, 2)

# The 47 prefectures in JIS X 0401 order: index + 1 is the prefecture's code (01 北海道 … 47 沖縄県).
PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)


def check_digit(body: str) -> str:
    """The check digit of a five-digit code body (`31372` → `6`)."""
    if len(body) != len(WEIGHTS) or not body.isascii() or not body.isdigit():
        raise ValueError(f"a code body is 5 ASCII digits, not {body!r}")
    total = sum(weight * int(digit) for weight, digit in zip(WEIGHTS, body, strict=True))
    return str((11 - total % 11) % 10)


def is_valid(code: str) -> bool:
    """Six ASCII digits whose last is the check digit of the first five (the prefecture is not checked)."""
    return len(code) == 6 and code.isascii() and code.isdigit() and check_digit(code[:5]) == code[5]


def normalize(raw: str) -> str:
    """What a person typed, with full-width digits read as digits and surrounding spaces dropped."""
    return unicodedata.normalize("NFKC", raw).strip()


@dataclass(frozen=True)
class MunicipalityCode:
    code: str  # six digits
    prefecture: str  # 鳥取県

    @property
    def prefecture_code(self) -> str:
        return self.code[:2]


def code_problem(raw: str) -> str | None:
    """Why `raw` is not a municipality's 全国地方公共団体コード, or None."""
    code = normalize(raw)
    if not code.isascii() or not code.isdigit():
        return f"{raw!r}: a 全国地方公共団体コード is 6 digits"
    if len(code) == 5:
        return f"{code}: 5 digits, without the check digit: the full code is {code}{check_digit(code)}"
    if len(code) != 6:
        return f"{code}: a 全国地方公共団体コード is 6 digits, not {len(code)}"
    if code[5] != check_digit(code[:5]):
        return f"{code}: the check digit should be {check_digit(code[:5])}"
    prefecture = int(code[:2])
    if not 1 <= prefecture <= len(PREFECTURES):
        return f"{code}: no prefecture has the code {code[:2]} (01 北海道 … 47 沖縄県)"
    if code[2:5] == "000":
        return f"{code}: this is the code of {PREFECTURES[prefecture - 1]} itself, not of a municipality"
    return None


def parse_code(raw: str) -> MunicipalityCode:
    """A valid municipality code, or InvalidInput saying what is wrong with it."""
    problem = code_problem(raw)
    if problem:
        raise InvalidInput(problem)
    code = normalize(raw)
    return MunicipalityCode(code=code, prefecture=PREFECTURES[int(code[:2]) - 1])


def prefecture_problem(code: MunicipalityCode, prefecture: str) -> str | None:
    """Why `prefecture` (as typed) is not the prefecture of `code`, or None."""
    given = normalize(prefecture)
    if given == code.prefecture:
        return None
    if given not in PREFECTURES:
        return f"{prefecture!r} is not the name of a prefecture; {code.code} is in {code.prefecture}"
    return f"{code.code} is a municipality of {code.prefecture} ({code.prefecture_code}), not of {given}"


def find_municipality(raw: str) -> Municipality:
    """The municipality a command's `--municipality CODE` names (full-width digits accepted).
    NotFound says why: a mistyped code (check digit, five digits) or one not created yet."""
    code = normalize(raw)
    found = Municipality.objects.filter(code=code).first()
    if found is not None:
        return found
    problem = code_problem(raw)
    if problem:
        raise NotFound(f"No municipality with code {code!r}: {problem}.")
    raise NotFound(f"No municipality with code {code!r}: create it first with `manage.py create_municipality {code}`.")


@contextmanager
def municipality_command(raw: str) -> Iterator[Municipality]:
    """What every import command does around its work: the municipality `--municipality CODE` names,
    inside its tenant scope (row-level security: its rows only), and any domain error, from finding
    it or from the work, as the command's error message (file and line are in the message)."""
    try:
        town = find_municipality(raw)
        with scope(town.id):
            yield town
    except TsunaguError as exc:
        raise CommandError(exc.message) from exc
