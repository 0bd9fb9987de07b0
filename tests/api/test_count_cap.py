"""A list's count is exact up to the cap and says so past it (api/pagination.py): the households
list of a large town counts at most TSUNAGU_LIST_COUNT_CAP + 1 rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from neighborhoods.models import Household
from tests import factories


@pytest.fixture
def five_more(town):
    return [factories.household(town.municipality, at=factories.centre(town.neighborhood)) for _ in range(5)]


def listed(town) -> int:
    return Household.objects.filter(municipality=town.municipality, merged_into__isnull=True).count()


def test_below_the_cap_the_count_is_exact(town, five_more, settings):
    settings.TSUNAGU_LIST_COUNT_CAP = listed(town)
    body = town.client("coordinator").get("households", query={"limit": 2}).json()
    assert (body["count"], body["count_capped"]) == (listed(town), False)
    assert len(body["items"]) == 2


def test_past_the_cap_the_count_is_the_cap_and_says_so(town, five_more, settings):
    settings.TSUNAGU_LIST_COUNT_CAP = 3
    assert listed(town) > 3
    with CaptureQueriesContext(connection) as ctx:
        body = town.client("coordinator").get("households", query={"limit": 2}).json()
    assert (body["count"], body["count_capped"]) == (3, True)
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 4" in sql for sql in counts), counts


def test_a_narrower_filter_counts_exactly_again(town, five_more, settings):
    settings.TSUNAGU_LIST_COUNT_CAP = 3
    five_more[0].__class__.objects.filter(pk__in=[h.pk for h in five_more[:2]]).update(status="vacant")
    body = town.client("coordinator").get("households", query={"status": "vacant"}).json()
    assert (body["count"], body["count_capped"]) == (2, False)
