"""The demo town is onboarded like a real one: its files (fixtures/hokuei: a CP932 世帯 list with
Japanese headers and addresses only, the town's 位置参照情報 in MLIT's formats, corporations and
users as CSV) go through the onboarding and import commands, and what they produce is what the
files say: every household placed from its address at the finest level the reference holds, the
unknown spellings listed as unplaced, the accounts with their roles. A second load changes nothing."""

import csv
import io

import pytest
from django.core.management import call_command

from accounts.models import User
from accounts.roles import Role
from backend.tenancy import scope
from demo.towns import DEMO_USERNAMES, FIXTURES
from neighborhoods.models import Household, MatchLevel, Municipality
from visits.models import PartnerOrganization

HOKUEI = FIXTURES / "hokuei"


def _rows(path, encoding="utf-8"):
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def _expected_levels() -> dict[str, int]:
    """How many households the files say belong at each level: the 地番 of the address listed in the
    街区 file → block; only its 大字 → town; a 大字 the reference does not know → unmatched."""
    gaiku = _rows(HOKUEI / "address_reference" / "31372_gaiku.csv", "cp932")
    oaza = {r["大字町丁目名"] for r in _rows(HOKUEI / "address_reference" / "31372_oaza.csv", "cp932")}
    lots = {(r["大字・丁目名"], r["街区符号・地番"]) for r in gaiku}
    counts = {"block": 0, "town": 0, "unmatched": 0}
    for row in _rows(HOKUEI / "households.csv", "cp932"):
        rest = row["住所"].removeprefix("鳥取県東伯郡北栄町")
        town = next((o for o in sorted(oaza, key=len, reverse=True) if rest.startswith(o)), None)
        if town is None:
            counts["unmatched"] += 1
            continue
        lot = rest[len(town):].translate(str.maketrans("０１２３４５６７８９－", "0123456789-"))
        parent = lot.replace("番地", "-").split("-")[0]
        counts["block" if (town, parent) in lots else "town"] += 1
    return counts


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", password="tsunagu-demo-test", verbosity=0)
    return Municipality.objects.get(code="313726")


def test_every_household_is_placed_from_its_address_as_the_reference_allows(demo):
    expected = _expected_levels()
    assert expected["block"] > 0.9 * sum(expected.values()) and expected["town"] > 0 and expected["unmatched"] > 0
    with scope(demo.pk):
        households = Household.objects.filter(municipality=demo)
        levels = {level: households.filter(match_level=level).count() for level in expected}
        assert levels == expected
        assert not households.filter(match_level=MatchLevel.COORDINATES).exists()  # the list has no coordinates
        placed = households.exclude(match_level=MatchLevel.UNMATCHED)
        assert not placed.filter(location__isnull=True).exists()
        assert not placed.filter(neighborhood__isnull=True).exists()  # every point falls in a 自治会
        assert households.filter(match_level=MatchLevel.UNMATCHED, location__isnull=True).count() == expected["unmatched"]


def test_the_accounts_and_corporations_come_from_the_towns_csv_files(demo):
    users = _rows(HOKUEI / "users.csv")
    partners = _rows(HOKUEI / "partners.csv")
    with scope(demo.pk):
        assert set(PartnerOrganization.objects.filter(municipality=demo).values_list("code", flat=True)) == {
            p["法人コード"] for p in partners
        }
        assert not PartnerOrganization.objects.filter(municipality=demo, office__isnull=True).exists()
        accounts = {u.username: u for u in User.objects.filter(municipality=demo)}
    assert set(accounts) == {u["ユーザー名"] for u in users}
    for role, username in DEMO_USERNAMES.items():
        assert accounts[username].role == role
        assert accounts[username].check_password("tsunagu-demo-test")
    assert accounts["demo-commissioner"].neighborhoods.count() == 3
    assert all(u.partner_organization_id for u in accounts.values() if u.role == Role.OUTREACH_WORKER)


def test_loading_the_demo_again_writes_nothing(demo, django_capture_on_commit_callbacks):
    with scope(demo.pk):
        before = list(Household.objects.filter(municipality=demo).order_by("pk").values_list("pk", "version", "updated_at"))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", password="another-password", verbosity=0)
    with scope(demo.pk):
        after = list(Household.objects.filter(municipality=demo).order_by("pk").values_list("pk", "version", "updated_at"))
    assert after == before
    assert User.objects.get(username="demo-coordinator").check_password("tsunagu-demo-test")  # kept
