"""One error body everywhere: {"error": {"code", "message", "details"}}.

Domain errors (backend.errors), ninja's validation and HTTP errors, Django's 404/403 and anything
unexpected all end here. A 500 says nothing of the internals; the traceback goes to the server log
with an error id the client can quote."""

import logging
import uuid
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.db import DataError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import (
    AuthenticationError,
    AuthorizationError,
    HttpError,
    Throttled,
    ValidationError,
    ValidationErrorContext,
)
from psycopg.errors import DeadlockDetected, LockNotAvailable, SerializationFailure

from backend.errors import CODES_BY_STATUS, RateLimited, TsunaguError, error_body

logger = logging.getLogger("tsunagu.api")

def error_response(status: int, code: str, message: str, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status, json_dumps_params={"ensure_ascii": False})


def _validation_details(errors: list[dict]) -> list[dict]:
    """ninja/pydantic errors without the parts that are not JSON (exception objects in ctx)."""
    out = []
    for err in errors:
        item = {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type", "")}
        out.append(item)
    return out


def client_errors(error_contexts: list[ValidationErrorContext]) -> list[dict[str, Any]]:
    """ninja's validation errors with locations in the client's terms: `["body", "field", …]`,
    `["query", "name"]`, `["path", "name"]`. ninja reads a body into the handler's argument (say
    `payload`) and reports `["body", "payload", "field"]`; the client never sent a `payload`.
    Flattened query filters (`Query[HouseholdFilter]`) are already reported by parameter name."""
    errors: list[dict[str, Any]] = []
    for context in error_contexts:
        model = context.model
        source = model.__ninja_param_source__
        single = getattr(model, "__read_from_single_attr__", None) if source == "body" else None
        for error in context.pydantic_validation_error.errors(include_url=False):
            loc = tuple(error["loc"])
            loc = model.__ninja_flatten_map_reverse__.get(loc, loc)
            if single and loc[:1] == (single,):
                loc = loc[1:]  # the body is the argument itself, not an object holding it
            item: dict[str, Any] = {"loc": (source, *loc), "msg": error["msg"], "type": error["type"]}
            errors.append(item)
    return errors


def describe(details: list[dict]) -> str:
    """`field: message` for the first few problems, a field named as the client wrote it
    (`items.0.date`; the source alone when the whole body or query is at fault)."""
    parts = []
    for detail in details[:5]:
        loc = [str(p) for p in detail.get("loc", ())]
        where = ".".join(loc[1:]) or (loc[0] if loc else "request")
        parts.append(f"{where}: {detail.get('msg', '')}")
    return "; ".join(parts)


def install(api: NinjaAPI) -> None:
    @api.exception_handler(TsunaguError)
    def domain_error(request: HttpRequest, exc: TsunaguError) -> HttpResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, RateLimited) and exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        details = _validation_details(exc.errors)
        return error_response(422, "invalid", f"The request is not valid ({describe(details)}).", details)

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc.__cause__, RequestDataTooBig):
            return too_big(request, exc.__cause__)
        if isinstance(exc.__cause__, TsunaguError):  # raised by our body parser (api.parser): 415
            return domain_error(request, exc.__cause__)
        status = exc.status_code
        message = str(exc)
        if isinstance(exc, AuthenticationError):
            message = "Authentication is required: send 'Authorization: Bearer <token>'."
        elif isinstance(exc, AuthorizationError):
            message = "Your role may not do this."
        elif status == 400 and "parse" in message.lower():
            return error_response(400, "malformed_json", "The request body is not valid JSON.")
        response = error_response(status, CODES_BY_STATUS.get(status, "error"), message)
        if isinstance(exc, Throttled) and exc.wait:
            response["Retry-After"] = str(int(exc.wait))
        return response

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
        from django.conf import settings

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error_response(413, "too_large", f"The request body is larger than the limit of {limit} bytes.")

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(404, "not_found", "Not found.")

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(404, "not_found", "Not found.")

    @api.exception_handler(PermissionDenied)
    def permission_denied(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(403, "forbidden", "Your role may not do this.")

    @api.exception_handler(OperationalError)
    def database_contention(request: HttpRequest, exc: OperationalError) -> HttpResponse:
        # A deadlock or serialization failure undid the whole transaction: nothing was written,
        # and the same request sent again will most likely pass.
        if isinstance(exc.__cause__, DeadlockDetected | SerializationFailure | LockNotAvailable):
            logger.warning("%s %s aborted by the database: %s", request.method, request.path, exc.__cause__)
            response = error_response(
                409, "concurrent_update",
                "Another change to the same data was being made at the same moment; nothing was saved. Try again.",
            )
            response["Retry-After"] = "1"
            return response
        return unexpected(request, exc)

    @api.exception_handler(DataError)
    def out_of_range(request: HttpRequest, exc: DataError) -> HttpResponse:
        # The database refused a value its column or type cannot hold (a time zone displacement
        # beyond ±16 h, a number past its type): the input's fault, so a 422 and not a 500. The
        # schemas should have caught it first, so it is logged for us to close the gap.
        logger.warning("%s %s: a value the database cannot hold: %s", request.method, request.path, exc)
        return error_response(422, "out_of_range", "A value in the request is outside what can be stored.")

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        error_id = uuid.uuid4().hex[:12]
        logger.exception("unhandled error %s on %s %s", error_id, request.method, request.path)
        return error_response(
            500, "server_error", f"An internal error occurred; it has been logged as {error_id}.", {"error_id": error_id}
        )


# Django-level handlers (URLs outside ninja's routes, CSRF failures): JSON under /api/, HTML elsewhere.
def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return error_response(404, "not_found", f"No endpoint at {request.path}.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return error_response(500, "server_error", "An internal error occurred; it has been logged.")
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_response(400, "bad_request", "The request cannot be processed.")
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_response(403, "forbidden", "Forbidden.")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)
