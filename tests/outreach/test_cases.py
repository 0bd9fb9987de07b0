"""Continuous outreach cases (継続的支援): contacts, consent, meetings, plans, closure, overdue."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.roles import Role
from outreach.models import Concern, OutreachCase
from outreach.services import sweep_overdue
from tests import factories
from tests.api.test_errors import assert_error_body


@pytest.fixture
def case(town):
    concern_id = town.client("commissioner").post(
        "concerns", {"household_id": str(town.household.id), "categories": ["hikikomori"]}
    ).json()["id"]
    client = town.client("coordinator")
    client.post(f"concerns/{concern_id}/transitions", {"to": "triaged", "reason": "確認"})
    r = client.post("cases", {"household_id": str(town.household.id), "resident_id": str(town.resident.id),
                              "title": "長期ひきこもり", "cadence_days": 14,
                              "lead_worker_id": town.users["outreach_worker"].id, "concern_id": concern_id})
    assert r.status_code == 201, r.content
    return {"id": r.json()["id"], "concern_id": concern_id, "client": client}


def test_opening_a_case_links_the_concern(town, case):
    body = case["client"].get(f"cases/{case['id']}").json()
    assert body["lead_partner_id"] == town.partner.id  # from the lead worker
    assert body["next_contact_due"] == str(timezone.localdate() + dt.timedelta(days=14))
    concern = Concern.objects.get(pk=case["concern_id"])
    assert concern.status == "case_opened" and str(concern.case_id) == case["id"]


def test_a_case_cannot_skip_triage(town):
    concern_id = town.client("commissioner").post(
        "concerns", {"household_id": str(town.household.id), "categories": ["hikikomori"]}).json()["id"]
    r = town.client("coordinator").post("cases", {"household_id": str(town.household.id), "title": "x", "concern_id": concern_id})
    assert_error_body(r, 409, "invalid_transition")
    assert not OutreachCase.objects.exists()


def test_the_lead_worker_logs_contacts_and_the_due_date_moves(town, case):
    worker = town.client("outreach_worker")
    day = timezone.localdate() - dt.timedelta(days=1)
    r = worker.post(f"cases/{case['id']}/contacts", {"kind": "visit", "contacted_on": str(day), "reached": False, "note": "応答なし、手紙を置いた"})
    assert r.status_code == 201, r.content
    body = worker.get(f"cases/{case['id']}").json()
    assert body["last_contact_on"] == str(day)
    assert body["next_contact_due"] == str(day + dt.timedelta(days=14))
    assert [c["kind"] for c in body["contacts"]] == ["visit"]
    other = factories.user(town.municipality, Role.OUTREACH_WORKER)  # another corporation
    assert_error_body(factories_client(other).post(f"cases/{case['id']}/contacts", {"kind": "call", "contacted_on": str(day)}), 404)


def test_a_multi_agency_meeting_needs_consent(town, case):
    client = case["client"]
    body = {"kind": "multi_agency", "held_on": str(timezone.localdate()), "members": [{"agency": "地域包括支援センター"}]}
    err = assert_error_body(client.post(f"cases/{case['id']}/meetings", body), 409, "consent_required")
    assert "同意" not in err["code"]
    support = {"kind": "support", "held_on": str(timezone.localdate()), "members": [{"agency": "社協"}]}
    assert_error_body(client.post(f"cases/{case['id']}/meetings", support), 422)  # confidentiality not acknowledged
    assert client.post(f"cases/{case['id']}/meetings", {**support, "confidentiality_acknowledged": True}).status_code == 201
    consent = client.post(f"cases/{case['id']}/consent", {"consent_date": str(timezone.localdate()), "scope": "重層的支援会議での情報共有"})
    assert consent.status_code == 200 and consent.json()["consent"] == "consented"
    meeting = client.post(f"cases/{case['id']}/meetings", body)
    assert meeting.status_code == 201, meeting.content
    plan = client.post(f"cases/{case['id']}/plans", {"goals": "居場所につながる", "roles": [{"agency": "社協", "role": "サロンへの同行"}],
                                                    "approved_meeting_id": meeting.json()["id"]})
    assert plan.status_code == 201 and plan.json()["approved_at_id"] == meeting.json()["id"]


def test_closing_needs_a_reason_and_a_closed_case_is_not_edited(town, case):
    client = case["client"]
    assert_error_body(client.post(f"cases/{case['id']}/close", {"reason": "resolved", "evaluation": ""}), 422)
    assert_error_body(client.post(f"cases/{case['id']}/close", {"reason": "bored", "evaluation": "x"}), 422)
    r = client.post(f"cases/{case['id']}/close", {"reason": "handed_over", "evaluation": "障がい相談支援につないだ"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert Concern.objects.get(pk=case["concern_id"]).status == "closed"
    edit = client.patch(f"cases/{case['id']}", {"version": r.json()["version"], "stage": "trust"})
    assert_error_body(edit, 409, "case_closed")
    contact = town.client("outreach_worker").post(f"cases/{case['id']}/contacts", {"kind": "call", "contacted_on": str(timezone.localdate())})
    assert_error_body(contact, 409, "case_closed")


def test_the_daily_sweep_marks_overdue_in_one_pass_and_lists_them(town, case):
    OutreachCase.objects.filter(pk=case["id"]).update(next_contact_due=timezone.localdate() - dt.timedelta(days=1))
    town.with_outreach()
    first = sweep_overdue()
    assert first["cases_changed"] == 1
    assert sweep_overdue() == {"cases_changed": 0, "watches_changed": 0}  # idempotent
    mine = town.client("outreach_worker").get("me/overdue").json()
    assert [c["id"] for c in mine["cases"]] == [case["id"]]
    everyone = town.client("coordinator").get("overdue").json()
    assert [c["id"] for c in everyone["cases"]] == [case["id"]]
    assert_error_body(town.client("outreach_worker").get("overdue"), 403)
    later = sweep_overdue(today=timezone.localdate() + dt.timedelta(days=30))
    assert later["watches_changed"] == 1  # the fixture's 見守り (every 7 days) is now late too


def test_the_sweep_runs_as_a_scheduled_job(db):
    from django_q.models import Schedule
    from django_q.tasks import async_task, result

    assert Schedule.objects.filter(func="outreach.tasks.sweep_overdue_task", schedule_type="D").exists()
    assert result(async_task("outreach.tasks.sweep_overdue_task")) == {"cases_changed": 0, "watches_changed": 0}


def factories_client(user):
    from tests.conftest import ApiClient

    return ApiClient(factories.token_for(user))
