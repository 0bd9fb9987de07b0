"""A wrong 見守り check-in or case contact is corrected by a superseding entry, with who and why;
nothing is edited or deleted, and the watch's and case's dates follow the entries that stand."""

import datetime as dt
import uuid

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend import retention
from outreach import services
from outreach.models import CaseContact, OutreachCase, WatchArrangement, WatchCheckIn
from tests.api.test_errors import assert_error_body

TODAY = timezone.localdate


def _day(n: int) -> str:
    return str(TODAY() - dt.timedelta(days=n))


@pytest.fixture
def watch(town):
    return town.with_outreach().watch


def _check_in(town, role, watch, days_ago, **body):
    r = town.client(role).post(f"watches/{watch.pk}/check-ins", {"checked_on": _day(days_ago), **body})
    assert r.status_code == 201, r.content
    return WatchCheckIn.objects.filter(arrangement=watch).order_by("-pk").first()


def _correct(town, role, watch, entry, body):
    return town.client(role).post(f"watches/{watch.pk}/check-ins/{entry.pk}/corrections", body)


def test_a_commissioner_corrects_their_own_check_in_and_the_due_date_follows(town, watch):
    _check_in(town, "commissioner", watch, 10)
    wrong = _check_in(town, "commissioner", watch, 1, note="日付を間違えた")
    assert WatchArrangement.objects.get(pk=watch.pk).last_check_in == TODAY() - dt.timedelta(days=1)

    r = _correct(town, "commissioner", watch, wrong, {"checked_on": _day(3), "reason": "訪問したのは3日前だった"})
    assert r.status_code == 201, r.content
    fixed = r.json()
    assert (fixed["supersedes"], fixed["retracted"], fixed["correction_reason"]) == (wrong.pk, False, "訪問したのは3日前だった")
    assert fixed["recorded_by_id"] == town.users["commissioner"].pk and fixed["checked_on"] == _day(3)
    body = town.client("commissioner").get("watches").json()["items"][0]
    assert body["last_check_in"] == _day(3)
    assert body["next_due"] == str(TODAY() - dt.timedelta(days=3) + dt.timedelta(days=watch.cadence_days))

    listed = town.client("coordinator").get(f"watches/{watch.pk}/check-ins").json()
    assert listed["count"] == 3
    by_id = {item["id"]: item for item in listed["items"]}
    assert by_id[wrong.pk]["superseded_by"] == fixed["id"] and by_id[fixed["id"]]["superseded_by"] is None
    assert WatchCheckIn.objects.get(pk=wrong.pk).checked_on == TODAY() - dt.timedelta(days=1)  # never edited


def test_an_entry_is_corrected_once_then_its_newest_correction(town, watch):
    wrong = _check_in(town, "commissioner", watch, 2)
    first = _correct(town, "commissioner", watch, wrong, {"checked_on": _day(4), "reason": "日付の誤り"}).json()
    err = assert_error_body(_correct(town, "commissioner", watch, wrong, {"checked_on": _day(5), "reason": "もう一度"}),
                            409, "already_corrected")
    assert err["details"]["superseded_by"] == first["id"]
    newest = WatchCheckIn.objects.get(pk=first["id"])
    assert _correct(town, "commissioner", watch, newest, {"checked_on": _day(5), "reason": "もう一度"}).status_code == 201
    assert WatchArrangement.objects.get(pk=watch.pk).last_check_in == TODAY() - dt.timedelta(days=5)


def test_a_retraction_leaves_the_check_ins_that_stand(town, watch):
    started = WatchArrangement.objects.get(pk=watch.pk).started_on
    only = _check_in(town, "coordinator", watch, 1)
    r = _correct(town, "coordinator", watch, only, {"retract": True, "reason": "別の世帯の記録だった"})
    assert r.status_code == 201 and r.json()["retracted"] is True
    after = WatchArrangement.objects.get(pk=watch.pk)
    assert after.last_check_in is None and after.next_due == started + dt.timedelta(days=watch.cadence_days)
    assert WatchCheckIn.objects.filter(arrangement=watch).count() == 2  # nothing deleted
    assert list(WatchCheckIn.objects.filter(arrangement=watch).effective()) == []


def test_who_may_correct_a_check_in(town, watch):
    coordinators = _check_in(town, "coordinator", watch, 1)
    commissioners = _check_in(town, "commissioner", watch, 2)
    body = {"retract": True, "reason": "誤り"}
    assert_error_body(_correct(town, "commissioner", watch, coordinators, body), 403, "forbidden")
    for role in ("supervisor", "outreach_worker", "admin"):
        assert _correct(town, role, watch, commissioners, body).status_code in (403, 404)
    assert _correct(town, "coordinator", watch, commissioners, body).status_code == 201
    assert WatchCheckIn.objects.filter(arrangement=watch).count() == 3


@pytest.mark.parametrize("body", [
    {"checked_on": "2060-01-01", "reason": "未来"},
    {"checked_on": "1999-12-31", "reason": "古すぎる"},
    {"checked_on": "2026-11-01"},  # no reason
    {"checked_on": "2026-11-01", "reason": "   "},
    {"checked_on": "2026-11-01", "reason": "一行\u202e"},
    {"retract": True, "reason": "取り消し", "checked_on": "2026-11-01"},  # a retraction gives only the reason
    {"reason": "日付がない"},
])
def test_a_correction_follows_the_rules_of_a_new_entry(town, watch, body):
    entry = _check_in(town, "commissioner", watch, 1)
    assert_error_body(_correct(town, "commissioner", watch, entry, body), 422)
    assert WatchCheckIn.objects.filter(arrangement=watch).count() == 1


def test_a_check_in_dated_decades_ahead_is_refused(town, watch):
    r = town.client("commissioner").post(f"watches/{watch.pk}/check-ins", {"checked_on": "2056-12-02"})
    assert_error_body(r, 422)
    assert not WatchCheckIn.objects.exists()
    assert WatchArrangement.objects.get(pk=watch.pk).last_check_in is None


def test_the_database_refuses_a_correction_without_a_reason(town, watch):
    entry = _check_in(town, "commissioner", watch, 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        WatchCheckIn.objects.create(arrangement=watch, checked_on=entry.checked_on, recorded_by=entry.recorded_by,
                                    supersedes=entry)
    with pytest.raises(IntegrityError), transaction.atomic():
        WatchCheckIn.objects.create(arrangement=watch, checked_on=entry.checked_on, recorded_by=entry.recorded_by,
                                    retracted=True)


# --- case contacts ------------------------------------------------------------------------------------


@pytest.fixture
def case(town):
    case = town.with_outreach().case
    case.lead_worker = town.users["outreach_worker"]
    case.save(update_fields=["lead_worker"])
    return case


def _contact(town, role, case, days_ago, **body):
    r = town.client(role).post(f"cases/{case.pk}/contacts", {"kind": "visit", "contacted_on": _day(days_ago), **body})
    assert r.status_code == 201, r.content
    return r.json()["id"]


def test_a_worker_corrects_their_contact_and_the_case_moves_on(town, case):
    _contact(town, "outreach_worker", case, 8)
    wrong = _contact(town, "outreach_worker", case, 1, reached=True, note="会えた")
    version = OutreachCase.objects.get(pk=case.pk).version
    worker = town.client("outreach_worker")
    r = worker.post(f"cases/{case.pk}/contacts/{wrong}/corrections",
                    {"kind": "no_answer", "contacted_on": _day(2), "reason": "会えたのは別の日、この日は不在"})
    assert r.status_code == 201, r.content
    assert r.json()["supersedes"] == wrong and r.json()["by_id"] == town.users["outreach_worker"].pk
    detail = worker.get(f"cases/{case.pk}").json()
    assert detail["version"] == version + 1
    assert detail["last_contact_on"] == _day(2)
    assert detail["next_contact_due"] == str(TODAY() - dt.timedelta(days=2) + dt.timedelta(days=case.cadence_days))
    assert [c["id"] for c in detail["contacts"]] == [r.json()["id"], detail["contacts"][1]["id"]]
    assert wrong not in {c["id"] for c in detail["contacts"]}  # the case's reads use what stands
    log = worker.get(f"cases/{case.pk}/contacts").json()
    assert log["count"] == 3
    entry = next(c for c in log["items"] if c["id"] == wrong)
    assert entry["superseded_by"] == r.json()["id"] and entry["retracted"] is False


def test_retracting_the_only_contact_goes_back_to_the_opening(town, case):
    only = _contact(town, "coordinator", case, 1)
    r = town.client("coordinator").post(f"cases/{case.pk}/contacts/{only}/corrections",
                                        {"retract": True, "reason": "別の事例に記録した"})
    assert r.status_code == 201 and r.json()["retracted"] is True
    after = OutreachCase.objects.get(pk=case.pk)
    assert after.last_contact_on is None
    assert after.next_contact_due == after.opened_on + dt.timedelta(days=after.cadence_days)
    assert_error_body(town.client("coordinator").post(f"cases/{case.pk}/contacts/{only}/corrections",
                                                      {"retract": True, "reason": "再度"}), 409, "already_corrected")


def test_who_may_correct_a_contact(town, case):
    coordinators = _contact(town, "coordinator", case, 1)
    workers = _contact(town, "outreach_worker", case, 2)
    body = {"retract": True, "reason": "誤り"}
    assert_error_body(town.client("outreach_worker").post(f"cases/{case.pk}/contacts/{coordinators}/corrections", body),
                      403, "forbidden")
    for role in ("supervisor", "commissioner", "admin"):
        assert town.client(role).post(f"cases/{case.pk}/contacts/{workers}/corrections", body).status_code in (403, 404)
    assert town.client("coordinator").post(f"cases/{case.pk}/contacts/{workers}/corrections", body).status_code == 201
    assert_error_body(town.client("coordinator").post(f"cases/{case.pk}/contacts/{uuid.uuid4()}/corrections", body),
                      404, "contact_unknown")


def test_a_closed_case_is_not_corrected(town, case):
    contact = _contact(town, "coordinator", case, 1)
    services.close_case(case=case, reason="resolved", evaluation="主訴解消", by=town.users["coordinator"])
    r = town.client("coordinator").post(f"cases/{case.pk}/contacts/{contact}/corrections",
                                        {"retract": True, "reason": "誤り"})
    assert_error_body(r, 409, "case_closed")


# --- from a tablet ----------------------------------------------------------------------------------


def _push(client, *ops):
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id}).status_code == 201
    r = client.post("sync/push", {"device_id": device_id, "ops": list(ops)})
    assert r.status_code == 200, r.content
    return r.json()["results"]


def test_a_tablet_corrects_a_contact_through_the_same_rules(town, case):
    wrong = _contact(town, "outreach_worker", case, 1)
    worker = town.client("outreach_worker")

    def op(**data):
        return {"op_id": str(uuid.uuid4()), "kind": "case_contact.create", "data": {
            "id": str(uuid.uuid4()), "case_id": str(case.pk), "kind": "call", "contacted_on": _day(3), **data}}

    first, again, unexplained = _push(
        worker, op(supersedes=wrong, correction_reason="電話だった"), op(supersedes=wrong, correction_reason="もう一度"),
        op(supersedes=str(uuid.uuid4()), correction_reason="存在しない"),
    )
    assert first["status"] == "applied", first
    assert (again["status"], again["error"]["code"]) == ("rejected", "already_corrected"), again
    assert (unexplained["status"], unexplained["error"]["code"]) == ("rejected", "contact_unknown"), unexplained
    fixed = CaseContact.objects.get(pk=first["id"])
    assert str(fixed.supersedes_id) == wrong and fixed.correction_reason == "電話だった"
    assert OutreachCase.objects.get(pk=case.pk).last_contact_on == TODAY() - dt.timedelta(days=3)
    [no_reason] = _push(worker, op(supersedes=str(fixed.pk)))
    assert (no_reason["status"], no_reason["error"]["code"]) == ("rejected", "invalid"), no_reason


def test_a_tablet_retracts_a_check_in(town, watch):
    entry = _check_in(town, "commissioner", watch, 1)
    [result] = _push(town.client("commissioner"), {"op_id": str(uuid.uuid4()), "kind": "watch_check_in.create", "data": {
        "watch_id": watch.pk, "checked_on": _day(1), "supersedes": entry.pk, "retract": True,
        "correction_reason": "別の人の記録"}})
    assert result["status"] == "applied", result
    assert WatchCheckIn.objects.get(pk=result["id"]).retracted
    assert WatchArrangement.objects.get(pk=watch.pk).last_check_in is None
    [other] = _push(town.client("coordinator"), {"op_id": str(uuid.uuid4()), "kind": "watch_check_in.create", "data": {
        "watch_id": watch.pk, "checked_on": _day(1), "supersedes": entry.pk, "correction_reason": "x"}})
    assert (other["status"], other["error"]["code"]) == ("rejected", "already_corrected"), other


# --- 保存年限 -------------------------------------------------------------------------------------------


def test_retention_purges_whole_chains_of_corrections_only(town):
    """An old check-in corrected by an old one goes with it; an old one whose correction is recent
    stays with it; a purged closed case takes its corrected contacts along."""
    town.with_outreach()
    coordinator = town.users["coordinator"]
    watch = WatchArrangement.objects.get(pk=town.watch.pk)
    old = services.check_in(watch=watch, checked_on=dt.date(2020, 1, 10), ok=True, note="", by=coordinator)
    old_fix = services.correct_check_in(watch=watch, check_in_id=old.pk, by=coordinator, reason="日付",
                                        checked_on=dt.date(2020, 1, 11))
    kept = services.check_in(watch=watch, checked_on=dt.date(2020, 2, 1), ok=True, note="", by=coordinator)
    kept_fix = services.correct_check_in(watch=watch, check_in_id=kept.pk, by=coordinator, reason="日付",
                                         checked_on=TODAY() - dt.timedelta(days=1))
    case = services.open_case(by=coordinator, household_id=town.household.id, title="古い事例",
                              opened_on=dt.date(2019, 4, 1))
    contact = services.log_contact(case=case, by=coordinator, kind="visit", contacted_on=dt.date(2019, 5, 1),
                                   reached=True)
    services.correct_contact(case=case, contact_id=contact.pk, by=coordinator, reason="取り消し", retract=True)
    services.close_case(case=case, reason="resolved", evaluation="主訴解消", by=coordinator,
                        closed_on=dt.date(2019, 6, 1))
    OutreachCase.objects.filter(pk=town.case.pk).update(status="closed", closed_on=TODAY(), closure_reason="other")

    report = retention.purge(town.municipality.pk, TODAY())

    assert set(WatchCheckIn.objects.values_list("pk", flat=True)) == {kept.pk, kept_fix.pk}
    assert not WatchCheckIn.objects.filter(pk__in=[old.pk, old_fix.pk]).exists()
    assert not OutreachCase.objects.filter(pk=case.pk).exists() and not CaseContact.objects.filter(case_id=case.pk).exists()
    assert report.counts["watch_check_ins"] == 2 and report.counts["case_contacts"] == 2
