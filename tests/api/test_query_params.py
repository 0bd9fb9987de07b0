"""A query parameter an operation does not declare is refused (422 unknown_parameter), on every
operation of the published document; declared ones still work; non-API pages are not affected."""

import uuid

import pytest

from api.api import api
from tests.api.test_errors import assert_error_body

PREFIX = "/api/v1"


def _get_operations() -> list[tuple[str, dict]]:
    document = api.get_openapi_schema()
    return [(path, ops["get"]) for path, ops in sorted(document["paths"].items()) if "get" in ops]


def _example(parameter: dict) -> str:
    schema = parameter.get("schema", {})
    if "enum" in schema:
        return str(schema["enum"][0])
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("type") == "integer":
        return "1"
    return "x"


def _url(path: str, operation: dict) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", _example(parameter))
    return path


GET_OPERATIONS = _get_operations()


def test_the_document_has_the_operations_this_test_walks():
    paths = {path for path, _ in GET_OPERATIONS}
    assert {"/api/v1/households", "/api/v1/maps/tiles/{layer}/{z}/{x}/{y}.mvt", "/api/v1/health",
            "/api/v1/sync/photos/{photo_id}/image", "/api/v1/sync/pull"} <= paths


@pytest.mark.parametrize(("path", "operation"), GET_OPERATIONS, ids=[p for p, _ in GET_OPERATIONS])
def test_every_get_operation_refuses_an_unknown_query_parameter(town, path, operation):
    declared = sorted(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
    r = town.client("coordinator").get(_url(path, operation), query={"neighborhood_id": "40"})
    err = assert_error_body(r, 422, "unknown_parameter")
    assert err["details"][0]["loc"] == ["query", "neighborhood_id"]
    assert "Unknown query parameter 'neighborhood_id'" in err["message"]
    for name in declared:
        assert name in err["message"]
    if not declared:
        assert "no query parameters" in err["message"]


def test_households_with_a_misspelt_filter_is_refused_not_answered_with_everything(town):
    client = town.client("coordinator")
    err = assert_error_body(client.get("households", query={"neighborhood_id": town.neighborhood.id}), 422)
    assert "neighborhood" in err["message"] and "limit" in err["message"] and "offset" in err["message"]
    assert "payload" not in err["message"] and "filters" not in err["message"]


def test_declared_parameters_still_work(town):
    client = town.client("coordinator")
    r = client.get("households", query={"neighborhood": town.neighborhood.id, "limit": 1, "offset": 0, "q": ""})
    assert r.status_code == 200, r.content
    assert r.json()["count"] >= 1 and len(r.json()["items"]) == 1
    r = client.get("neighborhoods", query={"limit": 5})
    assert r.status_code == 200, r.content
    r = client.get("maps/coverage", query={"group_by": "neighborhood", "limit": 5})
    assert r.status_code == 200, r.content
    r = client.get("audit/events", query={"limit": 1})
    assert r.status_code == 200, r.content


def test_two_unknown_parameters_are_both_named(town):
    err = assert_error_body(town.client("coordinator").get("me", query={"a": "1", "b": "2"}), 422, "unknown_parameter")
    assert [d["loc"] for d in err["details"]] == [["query", "a"], ["query", "b"]]


def test_authentication_comes_before_the_parameter_check(anon):
    assert_error_body(anon.get("households", query={"neighborhood_id": "1"}), 401)


def test_unknown_parameters_on_writes_are_refused_too(town):
    r = town.client("coordinator").post("households?dry_run=1", {"external_id": "Q-1", "address": "x"})
    assert_error_body(r, 422, "unknown_parameter")


def test_pages_outside_the_api_are_not_affected(client, town):
    assert client.get("/map/?neighborhood_id=1").status_code in (200, 302)
    assert client.get("/admin/login/?next=/admin/&foo=1").status_code == 200


def test_a_one_value_parameter_given_twice_is_refused_and_a_list_parameter_repeats(town):
    client = town.client("coordinator")
    r = client.get(f"neighborhoods.geojson?district=1&district={town.neighborhood.id}")
    err = assert_error_body(r, 422, "repeated_parameter")
    assert err["details"] == [{"loc": ["query", "district"], "msg": "given more than once; takes one value",
                               "type": "repeated_parameter"}]
    assert_error_body(client.get("households?limit=1&limit=2"), 422, "repeated_parameter")
    # `indicator` takes a list: repeating it is how a list is sent.
    r = client.get("maps/isolation?indicator=single_elderly&indicator=8050")
    assert r.status_code == 200, r.content


def test_a_concern_category_filter_is_one_of_the_categories(town):
    client = town.client("coordinator")
    assert client.get("concerns", query={"category": "isolation"}).status_code == 200
    err = assert_error_body(client.get("concerns", query={"category": "0.0"}), 422)
    assert ["query", "category"] in [d["loc"] for d in err["details"]]
