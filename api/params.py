"""Query parameters an operation does not declare are refused (422 `unknown_parameter`).

`GET /households?neighborhood_id=40` used to answer every household: the parameter is
`neighborhood`, and the misspelt one was silently ignored. Every operation now checks the names in
its query string against what its signature declares (plain query arguments, the fields of a
`Query[Schema]` filter, and `limit`/`offset` added by @paginate), once, here, before its handler
runs. Only API operations are checked: /map/ and /admin/ are Django views and are not affected."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from ninja.operation import Operation
from ninja.router import BoundRouter

from backend.errors import InvalidInput


def declared_query_names(operation: Operation) -> frozenset[str]:
    """The query parameter names the client may send to this operation, as published."""
    names: set[str] = set()
    for model in operation.models:
        if getattr(model, "__ninja_param_source__", None) != "query":
            continue
        flatten_map = getattr(model, "__ninja_flatten_map__", None)
        if flatten_map:
            names.update(flatten_map)
        else:
            names.update(field.alias or name for name, field in model.model_fields.items())
    return frozenset(names)


def unknown_parameter_error(unknown: list[str], declared: frozenset[str]) -> InvalidInput:
    accepts = ", ".join(sorted(declared)) if declared else "no query parameters"
    listed = ", ".join(f"'{name}'" for name in unknown)
    noun = "parameter" if len(unknown) == 1 else "parameters"
    return InvalidInput(
        f"Unknown query {noun} {listed}; this endpoint accepts: {accepts}.",
        code="unknown_parameter",
        details=[
            {"loc": ["query", name], "msg": f"unknown parameter; accepted: {accepts}", "type": "unknown_parameter"}
            for name in unknown
        ],
    )


def _checking(operation: Operation, read_values: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    declared = declared_query_names(operation)

    def checked(request: HttpRequest, path_params: Any, temporal_response: Any) -> dict[str, Any]:
        unknown = [name for name in request.GET if name not in declared]
        if unknown:
            raise unknown_parameter_error(unknown, declared)
        return read_values(request, path_params, temporal_response)

    return checked


def refuse_unknown_query_parameters(bound_routers: list[BoundRouter]) -> None:
    """Wrap each bound operation's parameter reading (after authentication and throttling, before
    validation) with the check. Idempotent: an operation is wrapped once."""
    for bound_router in bound_routers:
        for path_view in bound_router.path_operations.values():
            for operation in path_view.operations:
                if getattr(operation, "_query_checked", False):
                    continue
                operation._get_values = _checking(operation, operation._get_values)  # type: ignore[method-assign]
                operation._query_checked = True  # type: ignore[attr-defined]
