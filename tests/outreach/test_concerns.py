"""支え愛連絡会, 見守り and concerns (気づき): the workflow and who sees what."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from outreach.models import Concern, ConcernTransition, WatchArrangement
from tests import factories
from tests.api.test_errors import assert_error_body


def flag(client, town, **fields):
    body = {"household_id": str(town.household.id), "categories": ["living_alone"], "description": "新聞がたまっている", **fields}
    return client.post("concerns", body)


def test_a_commissioner_flags_in_a_few_fields_and_follows_the_status(town):
    client = town.client("commissioner")
    r = flag(client, town, urgency="high")
    assert r.status_code == 201, r.content
    concern_id = r.json()["id"]
    assert r.json()["status"] == "new" and r.json()["neighborhood_id"] == town.neighborhood.id
    coordinator = town.client("coordinator")
    assert coordinator.post(f"concerns/{concern_id}/transitions", {"to": "triaged", "reason": "確認"}).status_code == 200
    mine = client.get("concerns", query={"mine": "true"}).json()["items"]
    assert [(c["id"], c["status"]) for c in mine] == [(concern_id, "triaged")]


def test_a_pin_and_description_when_the_household_is_not_known_then_matched(town):
    lon, lat = factories.centre(town.neighborhood)
    client = town.client("commissioner")
    r = client.post("concerns", {"pin": {"type": "Point", "coordinates": [lon, lat]}, "place_description": "公民館の裏の家",
                                 "categories": ["hoarding"]})
    assert r.status_code == 201, r.content
    assert r.json()["household_id"] is None and r.json()["neighborhood_id"] == town.neighborhood.id
    unmatched = town.client("coordinator").get("concerns", query={"unmatched": "true"}).json()["items"]
    assert [c["id"] for c in unmatched] == [r.json()["id"]]
    matched = town.client("coordinator").post(f"concerns/{r.json()['id']}/match", {"household_id": str(town.household.id)})
    assert matched.json()["household_id"] == str(town.household.id)


def test_every_transition_is_recorded_and_invalid_ones_are_409(town):
    concern_id = flag(town.client("commissioner"), town).json()["id"]
    client = town.client("coordinator")
    skip = client.post(f"concerns/{concern_id}/transitions", {"to": "referred", "reason": "x", "referred_to": "elderly"})
    err = assert_error_body(skip, 409, "invalid_transition")
    assert err["details"]["allowed"] == ["closed", "triaged"]
    assert client.post(f"concerns/{concern_id}/transitions", {"to": "triaged", "reason": "面談で確認"}).status_code == 200
    no_counter = client.post(f"concerns/{concern_id}/transitions", {"to": "referred", "reason": "つなぐ"})
    assert_error_body(no_counter, 422)
    r = client.post(f"concerns/{concern_id}/transitions", {"to": "referred", "reason": "包括へ", "referred_to": "elderly"})
    assert r.status_code == 200 and r.json()["referred_to"] == "elderly"
    history = [(t["from_status"], t["to_status"], t["reason"]) for t in r.json()["transitions"]]
    assert history == [("", "new", "raised"), ("new", "triaged", "面談で確認"), ("triaged", "referred", "包括へ")]
    assert all(t["by_id"] for t in r.json()["transitions"])
    assert client.post(f"concerns/{concern_id}/transitions", {"to": "closed", "reason": "つながった"}).status_code == 200
    assert_error_body(client.post(f"concerns/{concern_id}/transitions", {"to": "triaged", "reason": "again"}), 409)
    assert ConcernTransition.objects.filter(concern_id=concern_id).count() == 4


def test_commissioners_never_see_others_text_or_other_areas(town):
    own = flag(town.client("commissioner"), town).json()["id"]
    by_worker = flag(town.client("outreach_worker"), town, description="虐待の疑い", categories=["abuse_dv"]).json()["id"]
    other_hood = factories.neighborhood(town.municipality)
    elsewhere = factories.household(town.municipality, at=factories.centre(other_hood))
    far = town.client("coordinator").post("concerns", {"household_id": str(elsewhere.id), "categories": ["poverty"]}).json()["id"]
    client = town.client("commissioner")
    ids = {c["id"] for c in client.get("concerns").json()["items"]}
    assert ids == {own, by_worker}
    assert client.get(f"concerns/{own}").json()["description"] == "新聞がたまっている"
    assert client.get(f"concerns/{by_worker}").json()["view"] == "status"  # no text (tests/outreach/test_privacy.py)
    assert_error_body(client.get(f"concerns/{far}"), 404)
    assert not AuditEvent.objects.filter(object_id=by_worker, actor=town.users["commissioner"]).exists()
    assert AuditEvent.objects.filter(object_id=own, actor=town.users["commissioner"]).exists()


def test_a_concern_about_another_municipalitys_household_is_refused(town, other_town):
    r = flag(town.client("coordinator"), other_town)
    assert_error_body(r, 404, "household_unknown")
    assert not Concern.objects.filter(municipality=town.municipality).exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"categories": ["living_alone"]}, 422),  # neither household nor pin
        ({"categories": ["made-up"], "household_id": None}, 422),
        ({"categories": [], "household_id": None}, 422),
        ({"categories": ["living_alone"], "urgency": "whenever", "household_id": None}, 422),
    ],
)
def test_bad_concerns_are_4xx(town, body, status):
    if "household_id" in body and body["household_id"] is None:
        body["household_id"] = str(town.household.id)
    r = town.client("commissioner").post("concerns", body)
    assert_error_body(r, status)
    assert not Concern.objects.exists()


def test_a_meeting_records_attendees_concerns_and_watches(town):
    client = town.client("coordinator")
    r = client.post("meetings", {
        "neighborhood_id": town.neighborhood.id, "held_on": "2026-11-20",
        "attendees": [{"role": "neighborhood_officer", "name": "会長"}, {"role": "commissioner", "name": "民生委員"},
                      {"role": "welfare_promoter"}, {"role": "ainowa"}, {"role": "welfare_division"}, {"role": "shakyo"}],
        "notes": "気になる人の情報交換",
        "concerns": [{"household_id": str(town.household.id), "categories": ["8050", "hikikomori"], "description": "息子が外出しない"}],
        "watches": [{"household_id": str(town.household.id), "watcher_name": "隣の田中さん", "watcher_role": "ainowa", "cadence_days": 7}],
    })
    assert r.status_code == 201, r.content
    assert (r.json()["concern_count"], r.json()["watch_count"]) == (1, 1)
    concern = Concern.objects.get(meeting_id=r.json()["id"])
    assert concern.source == "meeting" and concern.reported_by == town.users["coordinator"]
    watch = WatchArrangement.objects.get(meeting_id=r.json()["id"])
    assert watch.next_due == timezone.localdate() + dt.timedelta(days=7)
    detail = town.client("commissioner").get(f"meetings/{r.json()['id']}")
    assert detail.status_code == 200 and detail.json()["notes"] == "気になる人の情報交換"
    bad = client.post("meetings", {"neighborhood_id": town.neighborhood.id, "held_on": "2026-11-20",
                                   "attendees": [{"role": "mayor"}]})
    assert_error_body(bad, 422)


def test_watch_check_ins_move_the_due_date(town):
    town.with_outreach()
    client = town.client("commissioner")
    r = client.post(f"watches/{town.watch.id}/check-ins", {"checked_on": str(timezone.localdate()), "note": "元気"})
    assert r.status_code == 201, r.content
    assert r.json()["next_due"] == str(timezone.localdate() + dt.timedelta(days=7))
    assert r.json()["overdue"] is False
    assert_error_body(town.client("outreach_worker").post(f"watches/{town.watch.id}/check-ins", {"checked_on": "2026-11-20"}), 404)
