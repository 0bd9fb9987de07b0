"""The 全国地方公共団体コード check digit against real codes, and what it does and does not catch."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.errors import InvalidInput
from neighborhoods.municipality_code import check_digit, code_problem, is_valid, parse_code

# Real codes (総務省's list): every remainder case the rule has, including 0 (鳥取市: 11 − 0 → 1)
# and 1 (相模原市: 11 − 1 → 0).
KNOWN = {
    "313726": "北栄町",
    "472115": "沖縄市",
    "011002": "札幌市",
    "141003": "横浜市",
    "131016": "千代田区",
    "472018": "那覇市",
    "312011": "鳥取市",
    "141500": "相模原市",
}

bodies = st.text(alphabet="0123456789", min_size=5, max_size=5)


def remainder(body: str) -> int:
    return sum(w * int(d) for w, d in zip((6, 5, 4, 3, 2), body, strict=True)) % 11


@pytest.mark.parametrize("code", KNOWN)
def test_known_codes_are_valid(code):
    assert check_digit(code[:5]) == code[5]
    assert is_valid(code)
    assert code_problem(code) is None


def test_remainder_zero_gives_one_not_zero():
    # The rule as often paraphrased ("0 when the remainder is 0") would reject 鳥取市.
    assert remainder("31201") == 0
    assert check_digit("31201") == "1"
    assert remainder("14150") == 1
    assert check_digit("14150") == "0"


@given(bodies)
def test_every_body_has_exactly_one_check_digit(body):
    valid = [d for d in "0123456789" if is_valid(body + d)]
    assert valid == [check_digit(body)]


@given(bodies, st.integers(0, 5), st.integers(1, 9))
def test_a_changed_digit_is_caught_unless_the_remainder_moves_between_0_and_10(body, position, delta):
    code = body + check_digit(body)
    changed = code[:position] + str((int(code[position]) + delta) % 10) + code[position + 1 :]
    # Weights 2..6 and 11 prime: a changed body digit always changes the remainder, but remainders
    # 0 and 10 share the check digit 1, so exactly those slips go unnoticed.
    unnoticed = position < 5 and {remainder(body), remainder(changed[:5])} == {0, 10}
    assert is_valid(changed) == unnoticed


def test_the_blind_spot_exists():
    assert is_valid("312011") and is_valid("312061")  # 鳥取市 and a one-digit slip of it


@given(bodies, st.integers(0, 3))
def test_swapped_neighbours_are_caught_unless_the_remainder_moves_between_0_and_10(body, position):
    code = body + check_digit(body)
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    unnoticed = swapped == code or {remainder(body), remainder(swapped[:5])} == {0, 10}
    assert is_valid(swapped) == unnoticed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("313725", "313725: the check digit should be 6"),
        ("31372", "31372: 5 digits, without the check digit: the full code is 313726"),
        ("3137261", "3137261: a 全国地方公共団体コード is 6 digits, not 7"),
        ("31372a", "'31372a': a 全国地方公共団体コード is 6 digits"),
        ("", "'': a 全国地方公共団体コード is 6 digits"),
        ("483726", "483726: the check digit should be 9"),
        ("483729", "483729: no prefecture has the code 48 (01 北海道 … 47 沖縄県)"),
        ("000001", "000001: no prefecture has the code 00 (01 北海道 … 47 沖縄県)"),
        ("310000", "310000: this is the code of 鳥取県 itself, not of a municipality"),
    ],
)
def test_problems(raw, message):
    assert code_problem(raw) == message
    with pytest.raises(InvalidInput, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_code(raw)


def test_full_width_digits_are_read():
    parsed = parse_code(" ３１３７２６ ")
    assert (parsed.code, parsed.prefecture, parsed.prefecture_code) == ("313726", "鳥取県", "31")


@pytest.mark.parametrize(("code", "prefecture"), [("011002", "北海道"), ("131016", "東京都"), ("472115", "沖縄県")])
def test_prefecture_from_the_code(code, prefecture):
    assert parse_code(code).prefecture == prefecture
