"""Hostile input ends in a 4xx naming what and where, never a 500 and never a stored row: offsets,
NUL bytes and other control or bidi characters, booleans posing as numbers, bodies that are not
JSON, and a database deadlock."""

import threading
import time
import uuid

import pytest
from django.db import connection, connections, transaction

from neighborhoods.models import Household
from tests.api.test_errors import assert_error_body
from tests.conftest import ApiClient, build_town
from visits.models import Campaign

LISTS = ["users", "neighborhoods", "households", "resources", "campaigns", "meetings", "watches", "concerns",
         "cases", "audit/events"]


@pytest.mark.parametrize("path", LISTS)
def test_an_offset_beyond_bigint_is_422_on_every_list(town, path):
    client = town.client("coordinator")
    err = assert_error_body(client.get(path, query={"offset": str(2**63)}), 422, "invalid")
    assert ["query", "offset"] in [d["loc"] for d in err["details"]]
    assert client.get(path, query={"offset": "0"}).status_code == 200


@pytest.mark.parametrize("path", ["maps/isolation", "maps/overdue", "maps/coverage"])
def test_map_offsets_are_bounded_too(town, path):
    err = assert_error_body(town.client("coordinator").get(path, query={"offset": str(2**63)}), 422, "invalid")
    assert ["query", "offset"] in [d["loc"] for d in err["details"]]


@pytest.mark.parametrize("value", ["a\x00b", "a\u202eb", "a\nb", "a\x1bb", "a\u2066b"])
def test_query_parameters_refuse_control_and_bidi_characters(town, value):
    client = town.client("coordinator")
    for path, name in (("households", "q"), ("neighborhoods", "q"), ("concerns", "category"), ("audit/events", "object_id")):
        err = assert_error_body(client.get(path, query={name: value}), 422, "invalid")
        assert err["details"][0]["loc"] == ["query", name]
    # an undeclared parameter is checked as well
    err = assert_error_body(client.get("households", query={"zzz": value}), 422, "invalid")
    assert err["details"][0]["loc"] == ["query", "zzz"]
    assert client.get("households", query={"q": "北栄町\u3000東園"}).status_code == 200


@pytest.mark.parametrize("value", ["a\x00b", "a\u202eb", "a\x7fb", "a\x85b", "a\u200fb", "\ud800"])
def test_names_and_notes_refuse_control_and_bidi_characters(town, value):
    client = town.client("coordinator")
    r = client.post("households", {"external_id": "X-1", "address": value})
    err = assert_error_body(r, 422, "invalid")
    assert ["body", "address"] in [d["loc"] for d in err["details"]]
    r = client.post("cases", {"household_id": str(town.household.id), "title": "見守り", "notes": value})
    err = assert_error_body(r, 422, "invalid")
    assert ["body", "notes"] in [d["loc"] for d in err["details"]]
    assert not Household.objects.filter(external_id="X-1").exists()


def test_single_line_fields_refuse_newlines_and_notes_keep_them(town):
    client = town.client("coordinator")
    err = assert_error_body(client.post("cases", {"household_id": str(town.household.id), "title": "一行目\n二行目"}), 422)
    assert ["body", "title"] in [d["loc"] for d in err["details"]]
    r = client.post("cases", {"household_id": str(town.household.id), "title": "見守り", "notes": "一行目\n二行目\tタブ"})
    assert r.status_code == 201, r.content
    device = town.client("outreach_worker").post("sync/devices", {"device_id": str(uuid.uuid4()), "name": "iPad\n1"})
    err = assert_error_body(device, 422)
    assert ["body", "name"] in [d["loc"] for d in err["details"]]


def test_nested_free_form_values_are_checked(town):
    """answers, members, roles: dicts whose strings are checked, keys included."""
    case = town.with_outreach().case
    client = town.client("coordinator")
    r = client.post(f"cases/{case.id}/meetings", {"kind": "support", "held_on": "2026-11-20",
                                                  "members": [{"agency": "社協\x00"}]})
    err = assert_error_body(r, 422, "invalid")
    assert err["details"][0]["loc"][-1] == "members"
    assert "[0].agency" in err["details"][0]["msg"]
    r = client.post(f"cases/{case.id}/plans", {"goals": "月1回の訪問", "roles": [{"a\u202eb": "x"}]})
    assert_error_body(r, 422, "invalid")
    r = client.post(f"cases/{case.id}/plans", {"goals": "月1回の訪問", "roles": [{"agency": "社協", "role": "訪問\n見守り"}]})
    assert r.status_code == 201, r.content


@pytest.mark.parametrize("value", [True, "2", 2.5])
def test_numbers_refuse_booleans_and_strings(town, value):
    case = town.with_outreach().case
    r = town.client("coordinator").patch(f"cases/{case.id}", {"version": value, "cadence_days": 7})
    err = assert_error_body(r, 422, "invalid")
    assert ["body", "version"] in [d["loc"] for d in err["details"]]
    case.refresh_from_db()
    assert case.cadence_days != 7


def test_an_integral_json_number_is_an_integer(town):
    """JSON has one number type: 1.0 is the integer 1, as JSON Schema (and a generated client) has it."""
    case = town.with_outreach().case
    r = town.client("coordinator").patch(f"cases/{case.id}", {"version": float(case.version), "cadence_days": 7.0})
    assert r.status_code == 200, r.content
    case.refresh_from_db()
    assert case.cadence_days == 7


def test_booleans_and_ids_refuse_other_json_types(town):
    client = town.client("coordinator")
    err = assert_error_body(client.post(f"watches/{town.with_outreach().watch.id}/check-ins",
                                        {"checked_on": "2026-11-20", "ok": "false"}), 422)
    assert ["body", "ok"] in [d["loc"] for d in err["details"]]
    err = assert_error_body(client.put(f"campaigns/{town.campaign.id}/targets", {"neighborhood_ids": [True]}), 422)
    assert ["body", "neighborhood_ids"] in [d["loc"] for d in err["details"]]
    err = assert_error_body(client.put(f"campaigns/{town.campaign.id}/targets", {"neighborhood_ids": [2**63]}), 422)
    assert err["details"][0]["loc"][:2] == ["body", "neighborhood_ids"]
    # query parameters arrive as strings and still parse
    assert client.get("households", query={"neighborhood": str(town.neighborhood.id)}).status_code == 200


def test_a_point_refuses_booleans(town):
    r = town.client("coordinator").post("households", {"external_id": "B-1", "address": "x",
                                                       "location": {"type": "Point", "coordinates": [True, 35]}})
    err = assert_error_body(r, 422, "invalid")
    assert err["details"][0]["loc"][:3] == ["body", "location", "coordinates"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_json_bodies_need_a_json_content_type(town, content_type):
    client = town.client("coordinator")
    r = client.post("households", {"external_id": "CT-1", "address": "北栄町1"}, content_type=content_type)
    err = assert_error_body(r, 415, "unsupported_media_type")
    assert "application/json" in err["message"]
    assert not Household.objects.filter(external_id="CT-1").exists()
    for ok in ("application/json", "application/json; charset=utf-8", "application/merge-patch+json"):
        r = client.post("households", {"external_id": f"CT-{ok}"[:60], "address": "北栄町1"}, content_type=ok)
        assert r.status_code == 201, (ok, r.content)


def test_an_anonymous_text_plain_login_is_415(anon):
    r = anon.post("auth/token", {"username": "u", "password": "p", "device_name": "d"}, content_type="text/plain")
    assert_error_body(r, 415, "unsupported_media_type")


def test_nan_is_not_json(town):
    r = town.client("coordinator").post(
        "households", raw=b'{"external_id": "N", "address": "x", "location": {"type": "Point", "coordinates": [NaN, 35]}}'
    )
    assert_error_body(r, 400, "malformed_json")


def test_photo_upload_still_takes_image_bytes(town):
    """PUT /sync/photos/{id} is not a JSON endpoint: its Content-Type is the image's."""
    r = town.client("outreach_worker").request(
        "PUT", f"sync/photos/{uuid.uuid4()}?visit_id={uuid.uuid4()}", raw=b"not an image", content_type="image/jpeg"
    )
    assert 400 <= r.status_code < 500, r.content
    assert r.json()["error"]["code"] != "unsupported_media_type"


def _wait_until_blocked(pid: int, timeout: float = 10) -> None:
    """Until the backend `pid` waits for a lock."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited for a lock")


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_is_a_409_with_retry_after_and_nothing_is_written():
    """A real deadlock: another connection holds the campaign's visits and then asks for the campaign
    row, while the API's close holds the campaign row and waits for the visits. PostgreSQL aborts
    the API's transaction (it started waiting first; the other connection waits longer)."""
    town = build_town("930003")
    campaign = town.campaign
    api_pid: list[int] = []
    outcome: dict = {}

    def other_connection() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL deadlock_timeout = '20s'")
                cursor.execute("SELECT id FROM visits_scheduledvisit WHERE campaign_id = %s FOR UPDATE", [campaign.pk])
                outcome["locked"] = True
                while not api_pid:
                    time.sleep(0.02)
                _wait_until_blocked(api_pid[0])
                cursor.execute("SELECT id FROM visits_campaign WHERE id = %s FOR UPDATE", [campaign.pk])
        finally:
            connection.close()

    thread = threading.Thread(target=other_connection)
    thread.start()
    deadline = time.monotonic() + 30
    while "locked" not in outcome:
        assert thread.is_alive() and time.monotonic() < deadline, "the other connection never took its locks"
        time.sleep(0.02)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        api_pid.append(cursor.fetchone()[0])
    r = ApiClient(town.tokens["coordinator"]).post(f"campaigns/{campaign.id}/close")
    thread.join(30)
    err = assert_error_body(r, 409, "concurrent_update")
    assert r["Retry-After"] == "1"
    assert "Try again" in err["message"]
    assert Campaign.objects.get(pk=campaign.pk).status == "running"


@pytest.mark.parametrize("path", [
    "households?neighborhood={big}", "neighborhoods/{big}", "users/{big}", "cases?status=open&offset=0&limit={big}",
    "maps/isolation?neighborhood={big}", "maps/coverage?campaign={big}", "maps/coverage?partner={big}",
    "campaigns/{big}", "meetings?neighborhood={big}",
])
def test_ids_beyond_bigint_are_never_a_500(town, path):
    """An id no row can have finds nothing: 404 for an object, an empty list for a filter, 422 for a
    limit out of range."""
    r = town.client("coordinator").get(path.format(big=2**70))
    assert r.status_code in (200, 404, 422), (r.status_code, r.content)
    if r.status_code == 200:
        assert r.json()["count"] == 0


def test_a_time_the_database_cannot_hold_is_a_422_not_a_500(town):
    """Found by the fuzzer (seed 20261202): a zone displacement of +22:08 passes Python's datetime
    but not PostgreSQL's timestamptz."""
    client = town.client("coordinator")
    r = client.get("audit/events", query={"since": "0679-03-30T04:27:52+22:08"})
    assert_error_body(r, 422, "invalid")
    assert client.get("audit/events", query={"since": "2026-11-01T00:00:00+09:00"}).status_code == 200


def test_targets_list_each_neighborhood_once_and_say_so(town):
    from api.api import api

    body = api.get_openapi_schema()["components"]["schemas"]["TargetsIn"]
    assert body["properties"]["neighborhood_ids"]["uniqueItems"] is True


def test_a_value_only_the_database_refuses_is_a_422_and_logged(town, caplog):
    """The safety net behind the schemas: a zone displacement PostgreSQL cannot hold (beyond ±16 h)
    inside the window is refused as out of range, never a 500."""
    r = town.client("coordinator").get("audit/events", query={"since": "2026-11-01T00:00:00+17:30"})
    assert_error_body(r, 422, "out_of_range")
    assert "cannot hold" in caplog.text
