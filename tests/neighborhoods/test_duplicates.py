"""Possible duplicate households (same normalised address, similar kana) and merging two."""

import datetime as dt
import uuid

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from neighborhoods import duplicates, merging
from neighborhoods.duplicates import find_possible_duplicates, normalize_kana
from neighborhoods.merging import merge_households
from neighborhoods.models import DistinctHouseholds, Household, Resident
from outreach import services as outreach
from outreach.models import Concern, OutreachCase, WatchArrangement
from tests import factories
from tests.api.test_errors import assert_error_body
from visits.models import CampaignHousehold, ScheduledVisit, VisitRecord

ADDRESS = "北栄町由良宿1-2"


def _household(town, address=ADDRESS, *, kana=None, name="山田 太郎", relation="head", residents=True, **fields):
    """A household of the town at `address` (already normalised: the addresses app's job), with a
    世帯主 named `name` / `kana` unless `residents` is False."""
    hh = factories.household(town.municipality, at=factories.centre(town.neighborhood), **fields)
    Household.objects.filter(pk=hh.pk).update(address_normalized=address)
    if residents:
        factories.resident(hh, name=name, kana=kana or "", relation=relation, birth_year=1950)
    hh.refresh_from_db()
    return hh


def _pairs(town, **kw) -> set[frozenset]:
    return {frozenset((p.first_id, p.second_id)) for p in find_possible_duplicates(municipality_id=town.municipality.pk, **kw)}


# --- finding -----------------------------------------------------------------------------------------


def test_same_address_and_similar_kana_is_a_pair(town):
    a = _household(town, kana="やまだ たろう")
    b = _household(town, kana="ﾔﾏﾀﾞﾀﾛｰ")  # half-width, 長音
    [pair] = find_possible_duplicates(municipality_id=town.municipality.pk)
    assert {pair.first_id, pair.second_id} == {a.pk, b.pk}
    assert pair.first_id < pair.second_id
    assert {pair.first_name, pair.second_name} == {"ヤマダタロウ", "ヤマダタロ"}
    assert pair.compared == "kana" and pair.reason == "similar_kana"
    assert duplicates.SIMILARITY_THRESHOLD <= pair.score < 1.0
    assert {pair.first_external_id, pair.second_external_id} == {a.external_id, b.external_id}
    assert pair.address_normalized == ADDRESS


def test_equal_kana_after_normalising_scores_one(town):
    _household(town, kana="キッカワ　ユウコ")
    _household(town, kana="きつかわゆうこ")  # small ッ written large, hiragana, no space
    [pair] = find_possible_duplicates(municipality_id=town.municipality.pk)
    assert (pair.score, pair.reason, pair.first_name) == (1.0, "same_kana", "キツカワユウコ")


def test_the_sql_and_python_normalisations_agree(town):
    samples = ["ﾔﾏﾀﾞ ﾀﾛｰ", "きっかわ・ゆうこ", "ヂヅヰヱ", "ｼﾞｮｰｼﾞ-ｽﾐｽ", "アイ　ウエオ"]
    with connection.cursor() as cursor:
        for text in samples:
            cursor.execute("SELECT translate(normalize(%s, NFKC), %s, %s)", [text, duplicates._FOLD_FROM, duplicates._FOLD_TO])
            assert cursor.fetchone()[0] == normalize_kana(text), text


def test_without_kana_the_names_are_compared(town):
    _household(town, name="山田 太郎")
    _household(town, name="山田太郎", kana="ヤマダタロウ")
    [pair] = find_possible_duplicates(municipality_id=town.municipality.pk)
    assert (pair.compared, pair.reason, pair.first_name) == ("name", "same_name", "山田太郎")


def test_the_head_is_compared_not_another_resident(town):
    a = _household(town, kana="ヤマダタロウ")
    factories.resident(a, name="山田 花子", kana="ヤマダハナコ", relation="spouse", birth_year=1930)  # older, not head
    _household(town, kana="ヤマダタロウ")
    [pair] = find_possible_duplicates(municipality_id=town.municipality.pk)
    assert pair.first_name == pair.second_name == "ヤマダタロウ"


def test_one_family_split_in_two_households_is_not_a_pair(town):
    _household(town, kana="ヤマダタロウ")
    _household(town, kana="ヤマダハナコ")  # 世帯分離: same surname, another person
    assert find_possible_duplicates(municipality_id=town.municipality.pk) == []


def test_another_address_is_no_pair(town):
    _household(town, kana="ヤマダタロウ")
    _household(town, "北栄町由良宿1-3", kana="ヤマダタロウ")
    _household(town, "", kana="ヤマダタロウ")  # not normalised yet: never paired
    _household(town, "", kana="ヤマダタロウ")
    assert find_possible_duplicates(municipality_id=town.municipality.pk) == []


def test_a_pair_judged_distinct_is_left_out(town):
    a, b = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    duplicates.mark_not_duplicate(household=b, other_id=a.pk, by=town.users["coordinator"])
    assert find_possible_duplicates(municipality_id=town.municipality.pk) == []
    assert DistinctHouseholds.objects.get().first_id == min(a.pk, b.pk)


def test_another_municipalitys_look_alike_is_no_pair(town, other_town):
    _household(town, kana="ヤマダタロウ")
    _household(other_town, kana="ヤマダタロウ")
    assert find_possible_duplicates(municipality_id=town.municipality.pk) == []
    assert find_possible_duplicates(municipality_id=other_town.municipality.pk) == []


def test_a_merged_household_is_no_candidate(town):
    a, b = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    merge_households(survivor=a, absorbed=b, by=town.users["coordinator"], survivor_version=a.version,
                     absorbed_version=b.version)
    _household(town, "北栄町由良宿9", kana="サトウ")  # the address search still works for others
    assert find_possible_duplicates(municipality_id=town.municipality.pk) == []


def test_household_ids_limit_the_pairs_to_those_touching_them(town):
    a, b = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    c, d = _household(town, "北栄町2", kana="サトウイチロウ"), _household(town, "北栄町2", kana="サトウイチロー")
    assert _pairs(town) == {frozenset((a.pk, b.pk)), frozenset((c.pk, d.pk))}
    assert _pairs(town, household_ids=[d.pk]) == {frozenset((c.pk, d.pk))}
    assert _pairs(town, household_ids=[]) == set()


def test_a_household_without_residents_pairs_only_where_two_share_the_address(town):
    named, empty = _household(town, kana="ヤマダタロウ"), _household(town, residents=False)
    [pair] = find_possible_duplicates(municipality_id=town.municipality.pk)
    assert {pair.first_id, pair.second_id} == {named.pk, empty.pk}
    assert (pair.compared, pair.score, pair.reason) == ("", None, "no_residents")
    _household(town, kana="スズキ")  # a third household there: a block of flats, says nothing
    assert find_possible_duplicates(municipality_id=town.municipality.pk) == []


# --- merging -----------------------------------------------------------------------------------------


def _everything(town, hh):
    """A household with a resident, a concern, a 見守り, a case, a campaign state, a scheduled visit
    and a visit record: every kind of row that points at a household."""
    coordinator = town.users["coordinator"]
    resident = factories.resident(hh, name="山田 次郎", birth_year=1980)
    concern = outreach.raise_concern(user=coordinator, source="commissioner", household_id=hh.pk,
                                     resident_id=resident.pk, categories=["living_alone"], description="見かけない")
    watch = outreach.add_watch(user=coordinator, household_id=hh.pk, watcher_name="山根", watcher_role="commissioner",
                               cadence_days=7)
    case = outreach.open_case(by=coordinator, household_id=hh.pk, title="見守りから", resident_id=resident.pk)
    state = CampaignHousehold.objects.create(municipality=town.municipality, campaign=town.campaign, household=hh,
                                             neighborhood=town.neighborhood, state="met", attempts=1)
    visit = factories.scheduled_visit(town.campaign, hh, town.users["outreach_worker"], timezone.localdate(),
                                      status="done", outcome="met")
    record = VisitRecord.objects.create(id=uuid.uuid4(), municipality=town.municipality, household=hh,
                                        scheduled_visit=visit, worker=town.users["outreach_worker"], outcome="met",
                                        visited_at=timezone.now())
    return {"resident": resident, "concern": concern, "watch": watch, "case": case, "state": state, "visit": visit,
            "record": record}


def _merge(town, survivor, absorbed):
    survivor.refresh_from_db()
    absorbed.refresh_from_db()
    return merge_households(survivor=survivor, absorbed=absorbed, by=town.users["coordinator"],
                            survivor_version=survivor.version, absorbed_version=absorbed.version)


def test_merge_moves_every_row_that_points_at_the_absorbed_household(town):
    survivor = _household(town, kana="ヤマダタロウ")
    absorbed = _household(town, kana="ヤマダタロー")
    rows = _everything(town, absorbed)
    before = {h.pk: (h.version, h.change_seq) for h in Household.objects.filter(pk__in=[survivor.pk, absorbed.pk])}

    result = _merge(town, survivor, absorbed)

    assert Resident.objects.get(pk=rows["resident"].pk).household_id == survivor.pk
    for model, key in ((Concern, "concern"), (WatchArrangement, "watch"), (OutreachCase, "case"),
                       (CampaignHousehold, "state"), (ScheduledVisit, "visit"), (VisitRecord, "record")):
        assert model.objects.get(pk=rows[key].pk).household_id == survivor.pk, model
    # nothing points at the absorbed household any more, but its own residents judged the same person
    for rel in merging._referencing(Household):
        left = rel.related_model._base_manager.filter(**{rel.field.attname: absorbed.pk})
        assert not left.exists() or rel.related_model is Resident, rel
    assert result.moved["outreach.Concern.household"] == 1
    assert Concern.objects.get(pk=rows["concern"].pk).version == rows["concern"].version + 1

    gone = Household.objects.get(pk=absorbed.pk)
    assert gone.merged_into_id == survivor.pk and gone.merged_at is not None
    assert gone.location is None and gone.neighborhood_id is None
    kept = Household.objects.get(pk=survivor.pk)
    assert kept.neighborhood_id == town.neighborhood.pk and kept.location is not None
    for h in (kept, gone):
        version, seq = before[h.pk]
        assert h.version == version + 1
        assert h.change_seq > seq  # tablets re-pull both


def test_a_person_on_both_lists_stays_once_and_what_named_them_follows(town):
    survivor = _household(town, kana="ヤマダタロウ", name="山田 太郎")
    absorbed = _household(town, kana="ヤマダタロウ", name="山田　太郎")  # full-width space: the same person
    [twin] = absorbed.residents.all()
    other = factories.resident(absorbed, name="山田 三郎", birth_year=1990)
    concern = outreach.raise_concern(user=town.users["coordinator"], source="commissioner", household_id=absorbed.pk,
                                     resident_id=twin.pk, categories=["living_alone"])
    result = _merge(town, survivor, absorbed)
    [survivors_own] = survivor.residents.filter(name="山田 太郎")
    assert set(survivor.residents.values_list("pk", flat=True)) == {survivors_own.pk, other.pk}
    assert list(absorbed.residents.values_list("pk", flat=True)) == [twin.pk]  # readable with the merged one
    assert result.kept_on_absorbed == [str(twin.pk)]
    concern.refresh_from_db()
    assert (concern.household_id, concern.resident_id) == (survivor.pk, survivors_own.pk)


def test_the_further_campaign_state_and_one_open_visit_are_kept(town):
    survivor, absorbed = town.household, _household(town, kana="ヤマダタロウ")
    # the town's household has a planned visit tomorrow; the absorbed one an issued visit and a
    # 不在 attempt in the same campaign
    CampaignHousehold.objects.create(municipality=town.municipality, campaign=town.campaign, household=survivor,
                                     neighborhood=town.neighborhood, state="scheduled", priority=True,
                                     priority_reason="ヒアリングで")
    theirs = CampaignHousehold.objects.create(municipality=town.municipality, campaign=town.campaign,
                                              household=absorbed, neighborhood=town.neighborhood, state="pending",
                                              attempts=1)
    issued = factories.scheduled_visit(town.campaign, absorbed, town.users["outreach_worker"],
                                       timezone.localdate() + dt.timedelta(days=3), status="issued")
    result = _merge(town, survivor, absorbed)

    # the one tried at the door is kept, with the other's priority, and a visit is still planned
    [state] = CampaignHousehold.objects.filter(household=survivor)
    assert (state.pk, state.state, state.attempts, state.priority, state.priority_reason) == (
        theirs.pk, "scheduled", 1, True, "ヒアリングで")
    assert ScheduledVisit.objects.get(pk=issued.pk).status == "issued"
    cancelled = ScheduledVisit.objects.get(pk=town.visit.pk)
    assert (cancelled.status, cancelled.household_id) == ("cancelled", survivor.pk)
    assert result.cancelled_visits == [str(town.visit.pk)]


def test_a_finished_campaign_state_wins_and_cancels_the_planned_visit(town):
    survivor, absorbed = town.household, _household(town, kana="ヤマダタロウ")
    CampaignHousehold.objects.create(municipality=town.municipality, campaign=town.campaign, household=survivor,
                                     neighborhood=town.neighborhood, state="scheduled")
    CampaignHousehold.objects.create(municipality=town.municipality, campaign=town.campaign, household=absorbed,
                                     neighborhood=town.neighborhood, state="met", attempts=1)
    _merge(town, survivor, absorbed)
    assert list(CampaignHousehold.objects.filter(household=survivor).values_list("state", flat=True)) == ["met"]
    assert ScheduledVisit.objects.get(pk=town.visit.pk).status == "cancelled"


def test_the_absorbed_households_history_stays_readable(town):
    survivor, absorbed = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    address, location = absorbed.address, absorbed.location
    _merge(town, survivor, absorbed)
    history = apps.get_model("neighborhoods", "HouseholdHistory")
    events = list(history.objects.filter(pgh_obj_id=absorbed.pk).order_by("pgh_id"))
    assert events[0].address == address and events[0].location == location
    last = events[-1]
    assert last.merged_into_id == survivor.pk and last.location is None
    assert last.pgh_context.metadata["merge_survivor"] == str(survivor.pk)


def test_judged_distinct_pairs_follow_the_survivor(town):
    survivor, absorbed, third = (_household(town, kana="ヤマダタロウ") for _ in range(3))
    duplicates.mark_not_duplicate(household=absorbed, other_id=third.pk, by=town.users["coordinator"])
    _merge(town, survivor, absorbed)
    assert DistinctHouseholds.objects.filter(first_id=min(survivor.pk, third.pk), second_id=max(survivor.pk, third.pk)).exists()


def test_households_merged_earlier_point_at_the_new_survivor(town):
    a, b, c = (_household(town, kana="ヤマダタロウ") for _ in range(3))
    _merge(town, b, c)
    _merge(town, a, b)
    assert Household.objects.get(pk=c.pk).merged_into_id == a.pk


def test_every_field_pointing_at_a_household_has_a_merge_rule():
    """A new model pointing at households either moves as it is or gets its own rule here."""
    rules = merging.merge_rules()
    assert "unique per household: needs a rule" not in rules.values(), rules
    assert {"visits.VisitRecord.household", "outreach.Concern.household", "outreach.OutreachCase.household",
            "outreach.WatchArrangement.household", "neighborhoods.Household.merged_into"} <= {
        k for k, v in rules.items() if v == "moved"}
    assert not any("History" in k for k in rules)  # history stays as it was


def test_merging_is_audited_with_both_ids(town):
    survivor, absorbed = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    r = town.client("coordinator").post(f"households/{absorbed.pk}/merge", {
        "into": str(survivor.pk), "version": absorbed.version, "into_version": survivor.version})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["id"] == str(survivor.pk) and body["version"] == survivor.version + 1
    assert len(body["residents"]) == 1  # the same 世帯主 on both lists
    event = AuditEvent.objects.get(action="change", object_id=str(survivor.pk))
    assert event.detail["merged"] == str(absorbed.pk) and event.detail["into"] == str(survivor.pk)
    assert event.actor == town.users["coordinator"]


# --- the API: who, and what is refused ------------------------------------------------------------------


def _merge_body(survivor, absorbed, **swap):
    return {"into": str(survivor.pk), "version": absorbed.version, "into_version": survivor.version, **swap}


def test_a_stale_version_is_409_and_changes_nothing(town):
    survivor, absorbed = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    client = town.client("coordinator")
    for body in (_merge_body(survivor, absorbed, version=absorbed.version + 1),
                 _merge_body(survivor, absorbed, into_version=survivor.version + 1)):
        r = client.post(f"households/{absorbed.pk}/merge", body)
        assert_error_body(r, 409, "stale_version")
    assert Household.objects.get(pk=absorbed.pk).merged_into_id is None
    assert Household.objects.get(pk=absorbed.pk).version == absorbed.version


@pytest.mark.parametrize("role", ["supervisor", "outreach_worker", "commissioner", "admin"])
def test_only_coordinators_merge_and_judge(town, role):
    survivor, absorbed = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    client = town.client(role)
    assert client.post(f"households/{absorbed.pk}/merge", _merge_body(survivor, absorbed)).status_code == 403
    assert client.post(f"households/{absorbed.pk}/not-duplicate", {"other": str(survivor.pk)}).status_code == 403
    assert Household.objects.get(pk=absorbed.pk).merged_into_id is None
    assert not DistinctHouseholds.objects.exists()


@pytest.mark.parametrize(("role", "status"), [("coordinator", 200), ("supervisor", 200), ("outreach_worker", 403),
                                              ("commissioner", 403), ("admin", 403)])
def test_the_duplicate_list_is_for_coordinators_and_supervisors(town, role, status):
    a, b = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    r = town.client(role).get("households/duplicates")
    assert r.status_code == status, r.content
    if status == 200:
        body = r.json()
        assert body["count"] == 1
        [pair] = body["items"]
        assert {pair["first"]["id"], pair["second"]["id"]} == {str(a.pk), str(b.pk)}
        assert pair["reason"] == "same_kana" and pair["compared"] == "kana" and pair["score"] == 1.0


def test_another_municipalitys_household_is_404_either_way(town, other_town):
    ours, theirs = _household(town, kana="ヤマダタロウ"), _household(other_town, kana="ヤマダタロウ")
    client = town.client("coordinator")
    r = client.post(f"households/{ours.pk}/merge", _merge_body(theirs, ours))
    assert_error_body(r, 404)
    assert r.json()["error"]["details"] == [{"loc": ["body", "into"], "msg": "no such household"}]
    assert_error_body(client.post(f"households/{theirs.pk}/merge", _merge_body(ours, theirs)), 404)
    assert_error_body(client.post(f"households/{ours.pk}/not-duplicate", {"other": str(theirs.pk)}), 404)
    assert not Household.objects.filter(merged_into__isnull=False).exists()
    assert not DistinctHouseholds.objects.exists()


def test_merging_into_itself_or_a_merged_household_is_422(town):
    a, b, c = (_household(town, kana="ヤマダタロウ") for _ in range(3))
    client = town.client("coordinator")
    r = client.post(f"households/{a.pk}/merge", _merge_body(a, a))
    assert_error_body(r, 422, "same_household")
    assert r.json()["error"]["details"][0]["loc"] == ["body", "into"]
    _merge(town, b, c)
    c.refresh_from_db()
    a.refresh_from_db()
    r = client.post(f"households/{a.pk}/merge", _merge_body(c, a))
    assert_error_body(r, 422, "household_merged")
    assert r.json()["error"]["details"][0]["loc"] == ["body", "into"]
    r = client.post(f"households/{c.pk}/merge", _merge_body(a, c))
    assert_error_body(r, 422, "household_merged")
    assert Household.objects.get(pk=a.pk).merged_into_id is None


def test_not_duplicate_is_idempotent_and_drops_the_pair(town):
    a, b = _household(town, kana="ヤマダタロウ"), _household(town, kana="ヤマダタロウ")
    client = town.client("coordinator")
    for _ in range(2):
        r = client.post(f"households/{a.pk}/not-duplicate", {"other": str(b.pk)})
        assert r.status_code == 204, r.content
    assert DistinctHouseholds.objects.count() == 1
    assert client.get("households/duplicates").json()["count"] == 0
    assert_error_body(client.post(f"households/{a.pk}/not-duplicate", {"other": str(a.pk)}), 422, "same_household")
    assert AuditEvent.objects.filter(action="change", object_id=str(a.pk)).count() == 1
