"""Every list answers `{"items": [...], "count": n, "count_capped": bool}` with `?limit=&offset=` (api.pagination): no
operation answers a bare JSON array. GeoJSON FeatureCollections and tiles are not lists."""

import uuid

from api.api import api


def _bare_arrays() -> list[str]:
    document = api.get_openapi_schema()
    found = []
    for path, operations in sorted(document["paths"].items()):
        for method, operation in operations.items():
            if method != "get":
                continue
            content = operation["responses"].get(200, {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            if schema.get("type") == "array":
                found.append(f"GET {path}")
    return found


def test_no_operation_answers_a_bare_array():
    assert _bare_arrays() == []


def test_places_lists_are_pages(town):
    client = town.client("coordinator")
    for path in ("districts", "daily-life-areas"):
        body = client.get(path, query={"limit": 1, "offset": 0}).json()
        assert set(body) == {"items", "count", "count_capped"}, path
        assert body["count_capped"] is False, path
        assert body["count"] >= len(body["items"]) and len(body["items"]) <= 1


def test_devices_are_a_page(town):
    from tests import factories

    worker = town.users["outreach_worker"]
    factories.token_for(worker, "second tablet")
    mine = town.client("outreach_worker").get("me/devices", query={"limit": 1}).json()
    assert mine["count"] == 2 and len(mine["items"]) == 1
    theirs = town.client("coordinator").get(f"users/{worker.id}/devices", query={"offset": 1}).json()
    assert theirs["count"] == 2 and len(theirs["items"]) == 1
    both = town.client("coordinator").get(f"users/{worker.id}/devices").json()["items"]
    assert {d["name"] for d in both} == {"test tablet", "second tablet"}


def test_sync_forms_are_a_page(town):
    definition = {"questions": [{"id": "q", "type": "text", "label": "メモ"}]}
    coordinator = town.client("coordinator")
    for _ in range(2):
        assert coordinator.post("sync/forms", {"title": "調査票", "definition": definition}).status_code == 201
    worker = town.client("outreach_worker")
    assert worker.post("sync/devices", {"device_id": str(uuid.uuid4())}).status_code == 201
    page = worker.get("sync/forms", query={"limit": 1}).json()
    assert page["count"] == 2 and [f["version"] for f in page["items"]] == [2]
