"""Domain errors. Services raise these; the API maps each to its HTTP status and error body once
(api/errors.py), and management commands print their message."""

from typing import Any

# The error code a status gets when nothing more specific is known. Kept free of Django so that the
# layer in front of it (backend/edge.py, gunicorn's config) answers with the same codes and body.
CODES_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "invalid",
    429: "rate_limited",
    431: "headers_too_large",
    500: "server_error",
    501: "not_implemented",
    503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None) -> dict:
    """The one error body of the API: {"error": {"code", "message", "details"}}."""
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


class TsunaguError(Exception):
    status: int = 400
    code: str = "bad_request"
    default_message: str = "The request cannot be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None) -> None:
        self.message = message or self.default_message
        if code:
            self.code = code
        self.details = details if details is not None else {}
        super().__init__(self.message)


class InvalidInput(TsunaguError):
    status = 422
    code = "invalid"
    default_message = "The request is not valid."


class NotAuthenticated(TsunaguError):
    status = 401
    code = "not_authenticated"
    default_message = "Authentication is required."


class Forbidden(TsunaguError):
    status = 403
    code = "forbidden"
    default_message = "Your role may not do this."


class NotFound(TsunaguError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(TsunaguError):
    status = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class PayloadTooLarge(TsunaguError):
    status = 413
    code = "too_large"
    default_message = "The request is too large."


class RateLimited(TsunaguError):
    status = 429
    code = "rate_limited"
    default_message = "Too many attempts; try again later."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)
