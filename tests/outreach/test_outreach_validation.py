"""Outreach input the domain cannot hold is refused: null case fields, dates of facts in the future
or before 2000 (a check-in dated 2062 would silence a 見守り for decades), control characters in
offline payloads. Online that is a 422 naming the field; in the sync push the one op is rejected."""

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from outreach.models import CaseContact, Concern, WatchCheckIn
from tests.api.test_errors import assert_error_body


def locs(err: dict) -> list[list]:
    return [d["loc"] for d in err["details"]]


def tomorrow() -> str:
    return str(timezone.localdate() + dt.timedelta(days=1))


@pytest.mark.parametrize("field", ["cadence_days", "stage", "title", "notes"])
def test_case_patch_refuses_null(town, field):
    case = town.with_outreach().case
    r = town.client("coordinator").patch(f"cases/{case.id}", {"version": case.version, field: None})
    assert ["body", field] in locs(assert_error_body(r, 422, "invalid"))
    before = case.version
    case.refresh_from_db()
    assert case.version == before


def test_case_patch_schema_is_truthful(town):
    spec = town.client("coordinator").get("/api/v1/openapi.json").json()
    props = spec["components"]["schemas"]["CasePatch"]["properties"]
    for field in ("cadence_days", "stage", "title", "notes"):
        assert "anyOf" not in props[field] and "default" not in props[field], (field, props[field])
    assert spec["components"]["schemas"]["CasePatch"]["required"] == ["version"]


@pytest.mark.parametrize("day", ["2062-01-01", "1999-12-31", "9999-12-31", "tomorrow"])
def test_a_check_in_is_a_fact(town, day):
    watch = town.with_outreach().watch
    day = tomorrow() if day == "tomorrow" else day
    r = town.client("commissioner").post(f"watches/{watch.id}/check-ins", {"checked_on": day})
    assert ["body", "checked_on"] in locs(assert_error_body(r, 422, "invalid"))
    assert not WatchCheckIn.objects.filter(arrangement=watch).exists()
    watch.refresh_from_db()
    assert watch.last_check_in is None


@pytest.mark.parametrize(("path", "body", "field"), [
    ("contacts", {"kind": "call", "contacted_on": "TOMORROW"}, "contacted_on"),
    ("consent", {"consent_date": "0001-01-01", "scope": "共有"}, "consent_date"),
    ("meetings", {"kind": "support", "held_on": "TOMORROW", "confidentiality_acknowledged": True}, "held_on"),
    ("close", {"reason": "resolved", "evaluation": "つながった", "closed_on": "9999-12-31"}, "closed_on"),
])
def test_case_facts_have_plausible_dates(town, path, body, field):
    case = town.with_outreach().case
    body = {k: tomorrow() if v == "TOMORROW" else v for k, v in body.items()}
    r = town.client("coordinator").post(f"cases/{case.id}/{path}", body)
    assert ["body", field] in locs(assert_error_body(r, 422, "invalid"))
    case.refresh_from_db()
    assert case.status == "open" and case.consent_date is None


def test_a_meeting_and_its_watches_have_plausible_dates(town):
    client = town.client("coordinator")
    r = client.post("meetings", {"neighborhood_id": town.neighborhood.id, "held_on": tomorrow()})
    assert ["body", "held_on"] in locs(assert_error_body(r, 422, "invalid"))
    r = client.post("meetings", {"neighborhood_id": town.neighborhood.id, "held_on": "2026-11-20", "watches": [
        {"household_id": str(town.household.id), "watcher_name": "山根", "watcher_role": "commissioner",
         "cadence_days": 7, "started_on": "2062-01-01"}]})
    err = assert_error_body(r, 422, "invalid")
    assert ["body", "watches", "0", "started_on"] in locs(err)


def test_a_concern_place_is_one_line_and_its_text_has_no_controls(town):
    client = town.client("commissioner")
    r = client.post("concerns", {"household_id": str(town.household.id), "categories": ["isolation"],
                                 "place_description": "公民館の\n裏"})
    assert ["body", "place_description"] in locs(assert_error_body(r, 422, "invalid"))
    r = client.post("concerns", {"household_id": str(town.household.id), "categories": ["isolation"],
                                 "description": "新聞が\u202eたまっている"})
    assert ["body", "description"] in locs(assert_error_body(r, 422, "invalid"))
    assert not Concern.objects.filter(reported_by=town.users["commissioner"]).exists()


def _device(client) -> str:
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id}).status_code == 201
    return device_id


def _op(kind: str, data: dict) -> dict:
    return {"op_id": str(uuid.uuid4()), "kind": kind, "data": data}


def test_offline_ops_with_impossible_values_are_rejected_one_by_one(town):
    town.with_outreach()
    client = town.client("commissioner")
    device_id = _device(client)
    ops = [
        _op("watch_check_in.create", {"watch_id": town.watch.id, "checked_on": "2062-01-01"}),
        _op("watch_check_in.create", {"watch_id": True, "checked_on": str(timezone.localdate())}),
        _op("concern.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id),
                               "categories": ["isolation"], "description": "NUL\x00"}),
        _op("concern.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id),
                               "categories": ["isolation"], "place_description": "裏\n手"}),
        _op("watch_check_in.create", {"watch_id": town.watch.id, "checked_on": str(timezone.localdate()),
                                      "note": "灯りが\nついている"}),
    ]
    r = client.post("sync/push", {"device_id": device_id, "ops": ops})
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["rejected", "rejected", "rejected", "rejected", "applied"]
    assert results[0]["error"]["details"][0]["loc"] == ["data", "checked_on"]
    assert results[1]["error"]["details"][0]["loc"] == ["data", "watch_id"]
    assert results[2]["error"]["details"][0]["loc"] == ["data", "description"]
    assert results[3]["error"]["details"][0]["loc"] == ["data", "place_description"]
    town.watch.refresh_from_db()
    assert town.watch.last_check_in == timezone.localdate()


def test_offline_contacts_and_visits_are_facts(town):
    town.with_outreach()
    town.case.lead_worker = town.users["outreach_worker"]
    town.case.save()
    client = town.client("outreach_worker")
    device_id = _device(client)
    soon = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    ops = [
        _op("case_contact.create", {"id": str(uuid.uuid4()), "case_id": str(town.case.id), "kind": "visit",
                                    "contacted_on": tomorrow()}),
        _op("visit.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id), "outcome": "absent",
                             "visited_at": soon}),
        _op("visit.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id), "outcome": "absent",
                             "visited_at": "1999-12-31T10:00:00+09:00"}),
        _op("visit.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id), "outcome": "absent",
                             "visited_at": timezone.now().isoformat(), "notes": "\x00"}),
        _op("visit.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id), "outcome": "absent",
                             "visited_at": (timezone.now() + dt.timedelta(minutes=5)).isoformat(),
                             "notes": "不在\n郵便受けが一杯"}),
    ]
    r = client.post("sync/push", {"device_id": device_id, "ops": ops})
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["rejected", "rejected", "rejected", "rejected", "applied"], results
    assert not CaseContact.objects.filter(case=town.case).exists()


def test_a_lone_surrogate_in_an_offline_op_is_rejected_alone(town):
    client = town.client("commissioner")
    device_id = _device(client)
    bad = _op("concern.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id),
                                 "categories": ["isolation"], "description": "\ud800"})
    good = _op("concern.create", {"id": str(uuid.uuid4()), "household_id": str(town.household.id),
                                  "categories": ["isolation"], "description": "会話がない"})
    r = client.post("sync/push", {"device_id": device_id, "ops": [bad, good]})
    assert r.status_code == 200, r.content
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "applied"]
    assert Concern.objects.filter(reported_by=town.users["commissioner"]).count() == 1


def test_the_services_refuse_fact_dates_outside_their_window_whatever_calls_them(town):
    """Imports, jobs and the admin call the services without the API's schemas: the window holds
    there too (a contact dated tomorrow would move the case's due date past today's overdue)."""


    from backend.errors import InvalidInput
    from outreach import services
    from outreach.models import CaseContact, WatchCheckIn

    town.with_outreach()
    day_after = timezone.localdate() + dt.timedelta(days=1)
    coordinator = town.users["coordinator"]
    with pytest.raises(InvalidInput, match="contacted_on"):
        services.log_contact(case=town.case, by=coordinator, kind="call", contacted_on=day_after, reached=True)
    with pytest.raises(InvalidInput, match="checked_on"):
        services.check_in(watch=town.watch, checked_on=dt.date(2062, 1, 1), ok=True, note="", by=coordinator)
    with pytest.raises(InvalidInput, match="consent_date"):
        services.record_consent(case=town.case, consent_date=dt.date(1999, 12, 31), scope="支援会議")
    assert not CaseContact.objects.filter(case=town.case, contacted_on=day_after).exists()
    assert not WatchCheckIn.objects.filter(arrangement=town.watch).exists()
