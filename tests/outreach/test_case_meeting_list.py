"""GET /case-meetings: 支援会議 and 重層的支援会議 as a list, without reading each case — and so
without its notes, members' names or title, and without an audit row per meeting."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from outreach import services
from tests.api.test_errors import assert_error_body

pytestmark = pytest.mark.django_db

ITEM_KEYS = {"id", "case_id", "kind", "kind_label", "held_on", "members_count", "confidentiality_acknowledged",
             "has_plan_approved"}
SECRET = "秘密のメモ"
MEMBER = "山田 花子"


def _support(case, by, held_on, members=2):
    return services.hold_case_meeting(
        case=case, kind="support", held_on=held_on, by=by, notes=SECRET, confidentiality_acknowledged=True,
        members=[{"agency": "地域包括支援センター", "name": MEMBER}] * members,
    )


@pytest.fixture
def meetings(town, other_town):
    """The town's case: a 支援会議 in 令和7年度 (2025-06-10), then, after consent, a 重層的支援会議 in
    令和8年度 (2026-11-20) that approved a plan. The other town holds a 支援会議 too."""
    case = town.with_outreach().case
    by = town.users["coordinator"]
    first = _support(case, by, dt.date(2025, 6, 10), members=3)
    services.record_consent(case=case, consent_date=dt.date(2026, 11, 1), scope="重層的支援会議での共有")
    second = services.hold_case_meeting(
        case=case, kind="multi_agency", held_on=dt.date(2026, 11, 20), by=by, notes=SECRET,
        members=[{"agency": "社協", "name": MEMBER}],
    )
    services.add_plan(case=case, goals="居場所につなぐ", roles=[{"agency": "社協", "role": "同行"}], by=by,
                      approved_meeting_id=second.pk)
    theirs = _support(other_town.with_outreach().case, other_town.users["coordinator"], dt.date(2026, 11, 20))
    return {"case": case, "first": first, "second": second, "theirs": theirs}


def _items(r):
    assert r.status_code == 200, r.content
    return r.json()["items"]


@pytest.mark.parametrize("role", ["coordinator", "supervisor"])
def test_the_list_says_what_was_held_and_nothing_of_its_content(town, meetings, role):
    before = AuditEvent.objects.count()
    r = town.client(role).get("case-meetings")
    assert r.json()["count"] == 2  # the other town's meeting is not there
    second, first = _items(r)  # newest first
    assert set(first) == ITEM_KEYS and set(second) == ITEM_KEYS
    assert first == {
        "id": meetings["first"].id, "case_id": str(meetings["case"].id), "kind": "support", "kind_label": "支援会議",
        "held_on": "2025-06-10", "members_count": 3, "confidentiality_acknowledged": True, "has_plan_approved": False,
    }
    assert (second["id"], second["kind"], second["kind_label"]) == (meetings["second"].id, "multi_agency", "重層的支援会議")
    assert (second["members_count"], second["confidentiality_acknowledged"], second["has_plan_approved"]) == (1, False, True)
    text = r.content.decode()
    assert SECRET not in text and MEMBER not in text and meetings["case"].title not in text
    assert AuditEvent.objects.count() == before  # listing is not a read of sensitive detail


@pytest.mark.parametrize("role", ["outreach_worker", "commissioner", "admin"])
def test_other_roles_are_refused(town, meetings, role):
    assert_error_body(town.client(role).get("case-meetings"), 403, "forbidden")


def test_each_municipality_lists_only_its_own(other_town, meetings):
    [item] = _items(other_town.client("supervisor").get("case-meetings"))
    assert item["id"] == meetings["theirs"].id


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"fiscal_year": 2025}, ["first"]),
        ({"fiscal_year": 2026}, ["second"]),
        ({"fiscal_year": 2024}, []),
        ({"kind": "support"}, ["first"]),
        ({"kind": "multi_agency"}, ["second"]),
        ({"from": "2025-06-11"}, ["second"]),
        ({"to": "2025-06-10"}, ["first"]),
        ({"from": "2025-06-10", "to": "2026-11-20"}, ["second", "first"]),
        ({"fiscal_year": 2026, "kind": "support"}, []),
    ],
)
def test_filters(town, meetings, query, expected):
    assert [i["id"] for i in _items(town.client("coordinator").get("case-meetings", query=query))] == [
        meetings[name].id for name in expected
    ]


def test_paginated_like_every_list(town, meetings):
    r = town.client("coordinator").get("case-meetings", query={"limit": 1, "offset": 1})
    assert r.json()["count"] == 2
    assert [i["id"] for i in _items(r)] == [meetings["first"].id]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ({"from": "2026-11-21", "to": "2026-11-20"}, ["query", "to"]),
        ({"from": "1999-12-31"}, ["query", "from"]),
        ({"to": "2100-01-01"}, ["query", "to"]),
        ({"from": "yesterday"}, ["query", "from"]),
        ({"fiscal_year": 1999}, ["query", "fiscal_year"]),
        ({"fiscal_year": 2101}, ["query", "fiscal_year"]),
        ({"kind": "sasaeai"}, ["query", "kind"]),
    ],
)
def test_implausible_filters_are_422(town, query, loc):
    err = assert_error_body(town.client("coordinator").get("case-meetings", query=query), 422)
    assert [d["loc"] for d in err["details"]] == [loc]


def test_a_misspelt_filter_is_refused_not_ignored(town):
    err = assert_error_body(town.client("coordinator").get("case-meetings", query={"held_from": "2025-01-01"}), 422,
                            "unknown_parameter")
    assert [d["loc"] for d in err["details"]] == [["query", "held_from"]]


def test_the_number_of_queries_does_not_grow_with_the_meetings(town, meetings):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert town.client("coordinator").get("case-meetings").status_code == 200
        return len(queries)

    count()  # the token's first use of the test writes its last-used time
    few = count()
    for day in range(1, 6):
        _support(meetings["case"], town.users["coordinator"], dt.date(2026, 10, day))
    assert count() == few
