"""The published OpenAPI document tells the truth: one class per component name, request and
response bodies as the classes that parse and render them, errors documented, allowed values
listed, formats the server accepts, and a title a client generator can turn into a package."""

import enum
import re
import typing
from collections import defaultdict
from typing import Any

import jsonschema_rs
import pytest
from ninja.openapi.schema import REF_TEMPLATE
from ninja.schema import NinjaGenerateJsonSchema
from pydantic import BaseModel

from api.api import api
from backend.vocabulary import CONCERN_CATEGORIES

OPENAPI_URL = "/api/v1/openapi.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return api.get_openapi_schema()


def _operations():
    """(method, published path, ninja Operation) for every operation in the document."""
    for path, method, operation in api._documented_operations(api.get_root_path({})):
        yield method, path, operation


def _is_ninja_wrapper(model: type) -> bool:
    # ninja builds one model per operation to hold its parameters / response (never a component)
    return model.__module__ == "abc" or model.__name__ in {"BodyParams", "QueryParams", "PathParams"}


def _component_classes() -> dict[str, set[type]]:
    """Every pydantic model and enum reachable from an operation, by the component name pydantic
    gives it (the class __name__)."""
    by_name: dict[str, set[type]] = defaultdict(set)
    seen: set[Any] = set()

    def walk(annotation: Any) -> None:
        if annotation is None or id(annotation) in seen:
            return
        seen.add(id(annotation))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if not _is_ninja_wrapper(annotation):
                by_name[annotation.__name__].add(annotation)
            for field in annotation.model_fields.values():
                walk(field.annotation)
            return
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            by_name[annotation.__name__].add(annotation)
            return
        for arg in typing.get_args(annotation):
            walk(arg)

    for _method, _path, operation in _operations():
        for model in operation.models:
            walk(model)
        for model in operation.response_models.values():
            if isinstance(model, type):
                walk(model)
    return by_name


def test_no_two_classes_share_a_component_name():
    by_name = _component_classes()
    assert {"SupportPlanIn", "SchedulePlanIn", "ConcernStatus", "CaseStatus", "CaseContactKind"} <= set(by_name)
    clashes = {
        name: sorted(f"{c.__module__}.{c.__qualname__}" for c in classes)
        for name, classes in by_name.items()
        if len(classes) > 1
    }
    assert clashes == {}


def _resolve(schema: Any, definitions: dict[str, Any], depth: int = 0) -> Any:
    """The schema with every $ref replaced by its definition (no recursive models in this API)."""
    assert depth < 30, "recursive schema"
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return {**_resolve(definitions[name], definitions, depth + 1), **_resolve(rest, definitions, depth)}
        return {k: _resolve(v, definitions, depth) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(v, definitions, depth) for v in schema]
    return schema


def _expected(wrapper: type[BaseModel], mode: str) -> tuple[Any, dict[str, Any]]:
    """What the single field of ninja's wrapper model (the body or the response) looks like when the
    class is rendered on its own, and the definitions it refers to."""
    generated = wrapper.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=NinjaGenerateJsonSchema, mode=mode)
    (field,) = generated["properties"].values()
    return field, generated.get("$defs", {})


def test_request_bodies_are_the_classes_that_parse_them(document):
    components = document["components"]["schemas"]
    checked = 0
    for method, path, operation in _operations():
        bodies = [m for m in operation.models if m.__ninja_param_source__ == "body"]
        if not bodies:
            continue
        (wrapper,) = bodies
        expected, definitions = _expected(wrapper, "validation")
        published = document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
        assert _resolve(published, components) == _resolve(expected, definitions), f"{method} {path}"
        checked += 1
    assert checked >= 30


def test_response_bodies_are_the_classes_that_render_them(document):
    components = document["components"]["schemas"]
    for method, path, operation in _operations():
        for status, wrapper in operation.response_models.items():
            if not isinstance(wrapper, type):
                continue
            expected, definitions = _expected(wrapper, "serialization")
            published = document["paths"][path][method.lower()]["responses"][status]["content"]["application/json"]
            assert _resolve(published["schema"], components) == _resolve(expected, definitions), f"{method} {path} {status}"


def test_support_plans_and_contacts_document_their_own_fields(document):
    schemas = document["components"]["schemas"]
    plan = document["paths"]["/api/v1/cases/{case_id}/plans"]["post"]["requestBody"]["content"]["application/json"]
    assert plan["schema"] == {"$ref": "#/components/schemas/SupportPlanIn"}
    assert set(schemas["SupportPlanIn"]["properties"]) == {"goals", "roles", "approved_meeting_id"}
    assert set(schemas["SchedulePlanIn"]["properties"]) == {"from_date"}
    contact = schemas["ContactIn"]["properties"]["kind"]
    assert contact == {"$ref": "#/components/schemas/CaseContactKind"}
    assert set(schemas["CaseContactKind"]["enum"]) == {"visit", "call", "letter", "no_answer", "meeting"}
    assert set(schemas["CaseMeetingKind"]["enum"]) == {"support", "multi_agency"}


def test_error_responses_are_documented_with_the_error_body(document, anon):
    error = document["components"]["schemas"]["Error"]
    body = anon.get("households").json()  # a real 401
    jsonschema_rs.validate(_resolve(error, {}), body)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            secured = bool(operation.get("security"))
            logs_in = path == "/api/v1/auth/token" and method == "post"  # wrong credentials: 401
            assert (401 in responses) == (secured or logs_in), f"{method} {path}"
            assert (403 in responses) == secured, f"{method} {path}"
            if "{" in path:
                assert 404 in responses, f"{method} {path}"
            if "requestBody" in operation:
                assert {400, 413, 415, 422} <= set(responses), f"{method} {path}"
            for status, response in responses.items():
                if 400 <= int(status) < 500:  # (503 of /health is its own report)
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    login = document["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert 429 in login and "Retry-After" in login[429]["headers"]
    assert 401 not in document["paths"]["/api/v1/health"]["get"]["responses"]


def test_the_served_document_is_the_documented_one(anon, document):
    served = anon.get(OPENAPI_URL).json()
    assert served["components"]["schemas"]["Error"]["required"] == ["error"]
    assert served["paths"]["/api/v1/households/{household_id}"]["get"]["responses"]["404"]


def test_title_makes_a_valid_package_name(document):
    title = document["info"]["title"]
    assert title.isascii()
    # openapi-python-client: "<title> client" → a distribution and module name pip accepts
    assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9 ._-]*[A-Za-z0-9])?", title)
    assert "つなぐ" in document["info"]["description"]


def test_concern_categories_are_an_enum(document, town):
    schemas = document["components"]["schemas"]
    assert schemas["ConcernCategory"]["enum"] == list(CONCERN_CATEGORIES)
    items = schemas["ConcernIn"]["properties"]["categories"]["items"]
    assert items == {"$ref": "#/components/schemas/ConcernCategory"}
    r = town.client("commissioner").post(
        "concerns", {"household_id": str(town.household.id), "categories": ["not-a-category"]}
    )
    assert r.status_code == 422, r.content
    r = town.client("commissioner").post("concerns", {"household_id": str(town.household.id), "categories": ["8050"]})
    assert r.status_code == 201, r.content
    assert r.json()["categories"] == ["8050"]


def _property(document, schema: str, name: str) -> dict[str, Any]:
    return _resolve(document["components"]["schemas"][schema]["properties"][name], document["components"]["schemas"])


@pytest.mark.parametrize(
    ("value", "status"),
    [("09:00:00", 200), ("09:30", 200), ("09:00:00+09:00", 422), ("25:00", 422), ("9:00", 422), (32400, 422)],
)
def test_times_accepted_are_the_times_documented(document, town, value, status):
    schema = _property(document, "AvailabilityIn", "start_time")
    assert "format" not in schema  # `format: time` would demand a zone offset
    assert jsonschema_rs.is_valid({"type": "string", "pattern": schema["pattern"]}, value) == (status == 200)
    worker = town.users["outreach_worker"]
    body = {"weekdays": [1, 2, 3], "start_time": value, "end_time": "23:00:00"}
    r = town.client("coordinator").put(f"workers/{worker.id}/availability", body)
    assert r.status_code == status, r.content
    if status == 200:
        assert jsonschema_rs.is_valid({"type": "string", "pattern": schema["pattern"]}, r.json()["start_time"])


def test_photo_upload_documents_its_image_body(document):
    body = document["paths"]["/api/v1/sync/photos/{photo_id}"]["put"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"image/jpeg", "image/png", "image/webp", "image/heic"}
    for content in body["content"].values():
        assert content["schema"] == {"type": "string", "format": "binary"}


def test_audit_events_show_address_and_detail(document, town):
    town.with_photo()
    coordinator = town.client("coordinator")
    photo_image = f"sync/photos/{town.photo.id}/image"
    assert coordinator.get(photo_image, query={"variant": "thumbnail"}, REMOTE_ADDR="192.0.2.7").status_code == 200
    fields = document["components"]["schemas"]["AuditEventOut"]["properties"]
    assert {"ip", "detail"} <= set(fields)
    r = coordinator.get("audit/events", query={"object_id": str(town.photo.id)})
    assert r.status_code == 200, r.content
    (event,) = r.json()["items"]
    assert event["detail"] == {"variant": "thumbnail"}
    assert event["ip"] == "192.0.2.7"


TEXT_SAMPLES = ["山田 太郎", "a\tb", "a\nb", "line\n", "a\x00b", "a\x1fb", "a\x7fb", "a\x85b", "a\u202eb",
                "a\u2067b", "a\u200fb", "a\u2028b", "", "ｱｲｳ１２３"]


def _free_strings(node: Any, where: str):
    """Every string schema of a request body or query parameter that is not an enum, a format or a
    constant: the ones whose allowed characters only a pattern can state."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"enum", "const", "format"} & set(node):
            yield where, node
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    yield from _free_strings(sub, f"{where}.{name}")
            elif key in ("anyOf", "oneOf", "allOf"):
                for sub in value:
                    yield from _free_strings(sub, where)
            elif key == "items":
                yield from _free_strings(value, f"{where}[]")


def test_the_text_rule_is_published_and_agrees_with_the_server(document):
    """What the server refuses in text is what the document says: every free string of a request
    body and every string query parameter carries a pattern, and the two patterns in use accept
    exactly the samples the rule of backend.text accepts (read by jsonschema-rs, as validators and
    the fuzzer read them)."""
    from backend.text import LINE_PATTERN, NOTE_PATTERN, text_problem

    inputs = {name for name, schema in document["components"]["schemas"].items() if name.endswith("In")}
    seen_patterns = set()
    unpatterned = []
    for name in sorted(inputs):
        for where, node in _free_strings(document["components"]["schemas"][name], name):
            if "pattern" not in node:
                unpatterned.append(where)
            else:
                seen_patterns.add(node["pattern"])
    for path, methods in document["paths"].items():
        for method, details in methods.items():
            for parameter in details.get("parameters", []):
                if parameter["in"] == "query":
                    for where, node in _free_strings(parameter["schema"], f"{method} {path}?{parameter['name']}"):
                        if "pattern" not in node:
                            unpatterned.append(where)
    assert unpatterned == []
    assert {LINE_PATTERN, NOTE_PATTERN} <= seen_patterns
    for pattern, multiline in ((LINE_PATTERN, False), (NOTE_PATTERN, True)):
        validator = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
        for sample in TEXT_SAMPLES:
            assert validator.is_valid(sample) == (text_problem(sample, multiline=multiline) is None), (pattern, sample)
