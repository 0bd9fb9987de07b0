"""GET /households/duplicates from the stored report (neighborhoods.duplicates: PossibleDuplicatePair,
DuplicateScan): computed once per version of households and residents, the first read computes,
a stale read answers the stored pairs and queues one refresh, merging or judging a pair distinct
takes it off the stored list in the same transaction, and the page says how fresh it is."""

import django_q.tasks
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backend import tenancy
from neighborhoods import duplicates
from neighborhoods.duplicates import (
    find_possible_duplicates,
    read_possible_duplicates,
    refresh_possible_duplicates,
)
from neighborhoods.duplicates_tasks import refresh_possible_duplicates_task
from neighborhoods.merging import merge_households
from neighborhoods.models import DuplicateScan, Household, PossibleDuplicatePair, Resident
from tests.neighborhoods.test_duplicates import _household


def stored(town) -> set[frozenset]:
    return {frozenset(p) for p in PossibleDuplicatePair.objects.filter(municipality=town.municipality)
            .values_list("first_id", "second_id")}


def live(town) -> set[frozenset]:
    return {frozenset((p.first_id, p.second_id)) for p in find_possible_duplicates(municipality_id=town.municipality.pk)}


@pytest.fixture
def queued(monkeypatch):
    """Refreshes asked for, not run (as with a job cluster that has not picked them up yet)."""
    calls: list = []
    monkeypatch.setattr(django_q.tasks, "async_task", lambda *args, **kw: calls.append(args))
    return calls


@pytest.fixture
def pairs(town):
    """Three pairs at three addresses."""
    made = []
    for address, kana in (("北栄町1", "ヤマダタロウ"), ("北栄町2", "サトウイチロウ"), ("北栄町3", "スズキハナコ")):
        made.append((_household(town, address, kana=kana), _household(town, address, kana=kana)))
    return made


def test_the_first_read_computes_stores_and_says_it_is_fresh(town, pairs, queued):
    client = town.client("coordinator")
    assert not DuplicateScan.objects.exists()
    body = client.get("households/duplicates").json()
    assert (body["count"], body["count_capped"], body["stale"], body["refreshing"]) == (3, False, False, False)
    assert body["as_of"]
    assert [p["address_normalized"] for p in body["items"]] == ["北栄町1", "北栄町2", "北栄町3"]
    assert stored(town) == live(town) and len(stored(town)) == 3
    scan = DuplicateScan.objects.get(municipality=town.municipality)
    assert scan.version == duplicates.current_version(town.municipality.id) and scan.pairs == 3
    assert queued == []
    page = client.get("households/duplicates", query={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [p["address_normalized"] for p in page["items"]] == ["北栄町2"]


def test_a_fresh_read_runs_no_search(town, pairs):
    client = town.client("supervisor")
    client.get("households/duplicates")
    with CaptureQueriesContext(connection) as queries:
        body = client.get("households/duplicates").json()
    assert body["count"] == 3 and not body["stale"]
    assert not [q["sql"] for q in queries if "similarity(" in q["sql"]]


def test_a_stale_read_answers_the_stored_pairs_and_queues_one_refresh(town, pairs, queued):
    client = town.client("coordinator")
    first = client.get("households/duplicates").json()
    new = (_household(town, "北栄町4", kana="タナカ"), _household(town, "北栄町4", kana="タナカ"))
    body = client.get("households/duplicates").json()
    assert (body["count"], body["stale"], body["refreshing"], body["as_of"]) == (3, True, True, first["as_of"])
    assert len(queued) == 1 and queued[0] == ("neighborhoods.duplicates_tasks.refresh_possible_duplicates_task",
                                              town.municipality.id)
    assert client.get("households/duplicates").json()["stale"] is True
    assert len(queued) == 1, "one refresh per version"
    refresh_possible_duplicates_task(town.municipality.id)
    body = client.get("households/duplicates").json()
    assert (body["count"], body["stale"], body["refreshing"]) == (4, False, False)
    assert frozenset(h.pk for h in new) in stored(town)


def test_with_tasks_run_inline_a_stale_read_is_refreshed_first(town, pairs):
    client = town.client("coordinator")
    assert client.get("households/duplicates").json()["count"] == 3
    _household(town, "北栄町4", kana="タナカ"), _household(town, "北栄町4", kana="タナカ")
    body = client.get("households/duplicates").json()
    assert (body["count"], body["stale"]) == (4, False)


def test_a_resident_change_is_a_new_version(town, pairs, queued):
    read_possible_duplicates(municipality_id=town.municipality.id)
    before = duplicates.current_version(town.municipality.id)
    a, _ = pairs[2]
    Resident.objects.filter(household=a).update(kana="スズキイチロウ")  # no longer the same person
    assert duplicates.current_version(town.municipality.id) != before
    assert read_possible_duplicates(municipality_id=town.municipality.id).stale
    refresh_possible_duplicates(municipality_id=town.municipality.id)
    assert stored(town) == live(town) and len(stored(town)) == 2


def test_another_municipalitys_writes_leave_the_version(town, other_town, pairs):
    before = duplicates.current_version(town.municipality.id)
    with tenancy.scope(other_town.municipality.id):
        _household(other_town, kana="ヤマダタロウ")
    assert duplicates.current_version(town.municipality.id) == before


def test_merging_takes_the_pairs_off_the_stored_list_in_its_transaction(town, pairs, queued):
    client = town.client("coordinator")
    (a, b), (c, _), _ = pairs
    third = _household(town, "北栄町1", kana="ヤマダタロー")  # pairs with a and with b
    refresh_possible_duplicates(municipality_id=town.municipality.id)
    assert len(stored(town)) == 5
    b.refresh_from_db()
    r = client.post(f"households/{b.pk}/merge", {"into": str(a.pk), "version": b.version, "into_version": a.version})
    assert r.status_code == 200, r.content
    # before any refresh: every pair of the merged household is gone, the survivor's others stay
    assert not [p for p in stored(town) if b.pk in p]
    assert frozenset((a.pk, third.pk)) in stored(town) and len(stored(town)) == 3
    body = client.get("households/duplicates").json()
    assert body["stale"] is True and body["count"] == 3
    assert not [p for p in body["items"] if str(b.pk) in (p["first"]["id"], p["second"]["id"])]
    assert c.pk in {h for p in stored(town) for h in p}


def test_judging_a_pair_distinct_takes_it_off_the_stored_list(town, pairs, queued):
    client = town.client("coordinator")
    (a, b), _, _ = pairs
    client.get("households/duplicates")
    r = client.post(f"households/{a.pk}/not-duplicate", {"other": str(b.pk)})
    assert r.status_code == 204, r.content
    assert frozenset((a.pk, b.pk)) not in stored(town)
    body = client.get("households/duplicates").json()
    assert body["count"] == 2 and body["stale"] is False  # judgements are not an input: nothing to refresh


def test_a_refresh_leaves_out_what_was_handled_while_it_searched(town, pairs, monkeypatch):
    """A merge and a judgement committed after the search read its data, before the pairs are
    written: the stored list does not bring them back."""
    (a, b), (c, d), _ = pairs
    coordinator = town.users["coordinator"]
    real = duplicates.find_possible_duplicates

    def search_then_handle(**kw):
        found = real(**kw)
        merge_households(survivor=a, absorbed=b, by=coordinator, survivor_version=a.version, absorbed_version=b.version)
        duplicates.mark_not_duplicate(household=c, other_id=d.pk, by=coordinator)
        return found

    monkeypatch.setattr(duplicates, "find_possible_duplicates", search_then_handle)
    scan = refresh_possible_duplicates(municipality_id=town.municipality.id)
    assert scan.pairs == 3
    assert len(stored(town)) == 1 and frozenset((a.pk, b.pk)) not in stored(town)


def test_a_deleted_household_takes_its_pairs(town, pairs):
    refresh_possible_duplicates(municipality_id=town.municipality.id)
    (a, _), _, _ = pairs
    Household.objects.filter(pk=a.pk).delete()
    assert len(stored(town)) == 2


def test_each_municipality_reads_its_own_stored_pairs(town, other_town):
    _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    with tenancy.scope(other_town.municipality.id):
        _household(other_town, kana="サトウ"), _household(other_town, kana="サトウ")
    ours = town.client("coordinator").get("households/duplicates").json()
    theirs = other_town.client("coordinator").get("households/duplicates").json()
    assert ours["count"] == theirs["count"] == 1
    assert ours["items"][0]["first"]["name"] == "ヤマダタロウ" and theirs["items"][0]["first"]["name"] == "サトウ"
