"""The published OpenAPI document: what ninja generates, plus the error responses every operation
can give, described once here instead of on each of ~80 operations.

Which errors an operation documents follows from its shape: 401/403 where authentication applies,
404 where an authenticated request names anything (an id in the path, query or body that the caller
may not see answers 404), 400/413/415 where a body is read, 409 for writes, 422 everywhere (every
operation parses its query string, and refuses parameters it does not declare: api.params), 429
where a throttle applies. All of them carry the one body of api/errors.py.
"""

import re
from http.client import responses as reasons
from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.utils import normalize_path

from api.schemas import publish_text_rule
from backend.text import LINE_PATTERN

ERROR_REF = "#/components/schemas/Error"

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "The body of every error response.",
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Machine-readable, e.g. `not_found`, `version_conflict`"},
                "message": {"type": "string", "description": "For people; may be Japanese"},
                "details": {
                    "description": "More about the error: for 422, a list of {loc, msg, type}",
                    "anyOf": [{"type": "object"}, {"type": "array", "items": {}}],
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Beyond what the shape says, by (method, path under the API root).
_EXTRA_STATUSES: dict[tuple[str, str], set[int]] = {
    ("POST", "/auth/token"): {401},  # wrong credentials (the operation itself needs no token)
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}


def error_statuses(operation: Operation, method: str, path: str, details: dict[str, Any]) -> list[int]:
    """The error statuses one operation can answer with, from what it reads and who may call it."""
    statuses: set[int] = set(_EXTRA_STATUSES.get((method, path), ()))
    parameters = details.get("parameters") or []
    has_body = "requestBody" in details
    if operation.auth_callbacks:
        statuses |= {401, 403}
        if parameters or has_body:
            statuses.add(404)
    if has_body:
        statuses |= {400, 413, 415}
    if method in _WRITE_METHODS:
        statuses.add(409)
    statuses.add(422)  # at least an unknown query parameter (api.params)
    if operation.throttle_objects:
        statuses.add(429)
    return sorted(statuses)


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": reasons.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
    }
    if status == 429:
        response["headers"] = _RETRY_AFTER
    return response


class DocumentedNinjaAPI(NinjaAPI):
    """A NinjaAPI whose OpenAPI document also describes its error responses."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        prefix = self.get_root_path(path_params or {}) if path_prefix is None else path_prefix
        schema["components"].setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for path, method, operation in self._documented_operations(prefix):
            details = schema["paths"][path][method.lower()]
            for parameter in details.get("parameters") or []:
                if parameter.get("in") == "query" and isinstance(parameter.get("schema"), dict):
                    # api.middleware refuses these characters in every query parameter
                    publish_text_rule(parameter["schema"], LINE_PATTERN)
            under_root = "/" + path.removeprefix(prefix).lstrip("/")
            for status in error_statuses(operation, method, under_root, details):
                details["responses"].setdefault(status, _error_response(status))
        return schema

    def _documented_operations(self, prefix: str) -> list[tuple[str, str, Operation]]:
        """(path as published, method, operation), computed as ninja's OpenAPISchema.get_paths does."""
        found: list[tuple[str, str, Operation]] = []
        for bound_router in self._get_bound_routers():
            for path, path_view in bound_router.path_operations.items():
                full_path = "/".join([i for i in (bound_router.prefix, path) if i])
                full_path = re.sub(r"{[^}:]+:", "{", normalize_path("/" + prefix + full_path))
                for operation in path_view.operations:
                    if operation.include_in_schema:
                        found.extend((full_path, method, operation) for method in operation.methods)
        return found
