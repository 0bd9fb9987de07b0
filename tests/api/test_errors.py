"""One error body for every failure: {"error": {"code", "message", "details"}}."""

import logging

import pytest
from django.test import Client, override_settings
from django.urls import path
from ninja import NinjaAPI, Schema
from pydantic import ConfigDict

from api import errors
from backend.errors import Conflict


def assert_error_body(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_malformed_json_is_400(anon):
    r = anon.post("auth/token", raw=b'{"username": "a", ')
    assert_error_body(r, 400, "malformed_json")


def test_wrong_types_are_422_with_where(anon, db):
    r = anon.post("auth/token", {"username": ["x"], "password": "p", "device_name": "d"})
    err = assert_error_body(r, 422, "invalid")
    assert any(d["loc"][-1] == "username" for d in err["details"])


def test_unknown_fields_are_refused(anon, db):
    r = anon.post("auth/token", {"username": "u", "password": "p", "device_name": "d", "role": "admin"})
    err = assert_error_body(r, 422, "invalid")
    assert any(d["loc"][-1] == "role" for d in err["details"])


def test_missing_auth_is_401(anon):
    assert_error_body(anon.get("me"), 401, "not_authenticated")


def test_garbage_token_is_401(db):
    from tests.conftest import ApiClient

    assert_error_body(ApiClient("tsn_not-a-real-token").get("me"), 401, "invalid_token")
    assert_error_body(ApiClient("something-else").get("me"), 401, "invalid_token")


def test_unknown_api_path_is_json_404(anon):
    assert_error_body(anon.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error_body(anon.get("/api/v2/me"), 404, "not_found")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_too_large_body_is_413(anon):
    r = anon.post("auth/token", {"username": "u" * 2000, "password": "p", "device_name": "d"})
    err = assert_error_body(r, 413, "too_large")
    assert "1000" in err["message"]


def test_wrong_method_is_405_json(town):
    r = town.client("coordinator").put("me", {})
    assert_error_body(r, 405)


# A small API of its own, with the project's handlers, for errors no real endpoint should raise.
probe = NinjaAPI(urls_namespace="error-probe", auth=None)
errors.install(probe)


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")
    n: int


@probe.get("/boom")
def boom(request):
    raise RuntimeError("secret internals: password=hunter2")


@probe.get("/conflict")
def conflict(request):
    raise Conflict("already running", code="job_running", details={"job_id": "abc"})


@probe.post("/strict")
def strict(request, payload: Strict):
    return {"n": payload.n}


urlpatterns = [path("probe/", probe.urls)]


@pytest.fixture
def probe_client(settings):
    settings.ROOT_URLCONF = __name__
    return Client(raise_request_exception=False)


def test_unhandled_exception_is_500_without_internals_and_is_logged(probe_client, caplog):
    with caplog.at_level(logging.ERROR, logger="tsunagu.api"):
        r = probe_client.get("/probe/boom")
    err = assert_error_body(r, 500, "server_error")
    assert "hunter2" not in r.content.decode()
    assert "Traceback" not in r.content.decode()
    assert err["details"]["error_id"] in caplog.text
    assert "hunter2" in caplog.text  # the server log keeps what the client must not see


def test_domain_errors_keep_code_and_details(probe_client):
    err = assert_error_body(probe_client.get("/probe/conflict"), 409, "job_running")
    assert err["details"] == {"job_id": "abc"}


def test_extra_fields_forbidden_in_write_schema(probe_client):
    r = probe_client.post("/probe/strict", data={"n": 1, "x": 2}, content_type="application/json")
    assert_error_body(r, 422, "invalid")
    assert probe_client.post("/probe/strict", data={"n": 1}, content_type="application/json").json() == {"n": 1}


def test_openapi_and_docs_are_served(anon):
    r = anon.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["title"] == "tsunagu API"
    assert "/api/v1/auth/token" in spec["paths"]
    docs = anon.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"cdn.jsdelivr" not in docs.content  # served from our own static files
