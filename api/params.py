"""Query parameters an operation does not declare are refused (422 `unknown_parameter`).

`GET /households?neighborhood_id=40` used to answer every household: the parameter is
`neighborhood`, and the misspelt one was silently ignored. Every operation now checks the names in
its query string against what its signature declares (plain query arguments, the fields of a
`Query[Schema]` filter, and `limit`/`offset` added by @paginate), once, here, before its handler
runs. A parameter that takes one value and is given twice is refused too (`repeated_parameter`).
Only API operations are checked: /map/ and /admin/ are Django views and are not affected."""

from collections.abc import Callable
from types import UnionType
from typing import Any, Union, get_args, get_origin

from django.http import HttpRequest
from ninja.operation import Operation
from ninja.router import BoundRouter

from backend.errors import InvalidInput


def declared_query_names(operation: Operation) -> frozenset[str]:
    """The query parameter names the client may send to this operation, as published."""
    return frozenset(_declared(operation))


def _declared(operation: Operation) -> dict[str, bool]:
    """Declared query parameter name -> whether it takes a list (may be repeated)."""
    names: dict[str, bool] = {}
    for model in operation.models:
        if getattr(model, "__ninja_param_source__", None) != "query":
            continue
        flatten_map = getattr(model, "__ninja_flatten_map__", None)
        if flatten_map:
            for name, path in flatten_map.items():
                names[name] = _takes_list(model, path)
        else:
            for name, field in model.model_fields.items():
                names[field.alias or name] = _is_list(field.annotation)
    return names


def _takes_list(model: Any, path: tuple[str, ...]) -> bool:
    annotation: Any = model
    for step in path:
        fields = getattr(annotation, "model_fields", None)
        if not fields or step not in fields:
            return False
        annotation = fields[step].annotation
    return _is_list(annotation)


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_list(arg) for arg in get_args(annotation)) if origin in (Union, UnionType) else False


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


def repeated_parameter_error(repeated: list[str]) -> InvalidInput:
    listed = ", ".join(f"'{name}'" for name in repeated)
    return InvalidInput(
        f"Query parameter {listed} given more than once; it takes one value.",
        code="repeated_parameter",
        details=[{"loc": ["query", name], "msg": "given more than once; takes one value", "type": "repeated_parameter"}
                 for name in repeated],
    )


def _checking(operation: Operation, read_values: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    lists = _declared(operation)
    declared = frozenset(lists)

    def checked(request: HttpRequest, path_params: Any, temporal_response: Any) -> dict[str, Any]:
        unknown = [name for name in request.GET if name not in declared]
        if unknown:
            raise unknown_parameter_error(unknown, declared)
        # A parameter of one value given twice (`?district=1&district=2`) is ambiguous: refused,
        # not silently read as its last value.
        repeated = [name for name in request.GET if not lists[name] and len(request.GET.getlist(name)) > 1]
        if repeated:
            raise repeated_parameter_error(repeated)
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
