"""The API's middleware: responses under /api/ that Django makes outside ninja's handlers (405
from a route's method check, CSRF 403 …) are given the API's JSON error body too; query text is
checked once for every operation; and what only browser pages need (the session, the session's
user, messages) is skipped for a request that authenticates with a device token."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from pghistory.middleware import HistoryMiddleware

from api.errors import CODES_BY_STATUS, error_response
from backend.text import text_problem


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            message = {405: f"{request.method} is not allowed here."}.get(status, response.reason_phrase or "Error")
            new = error_response(status, CODES_BY_STATUS.get(status, "error"), message)
            if response.has_header("Allow"):
                new["Allow"] = response["Allow"]
            return new
        return response


class ApiQueryTextMiddleware:
    """Query parameters under /api/ obey the single-line text rule (backend.text) before any
    handler sees them: a NUL byte in `?q=` was a 500 from PostgreSQL, and a bidi override in a
    filter has no use. Every parameter is checked, declared or not."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and request.GET:
            details = []
            for key, values in request.GET.lists():
                for text in (key, *values):
                    problem = text_problem(text, multiline=False)
                    if problem:
                        details.append({"loc": ["query", key], "msg": problem, "type": "text"})
                        break
            if details:
                names = ", ".join(ascii(d["loc"][1]) for d in details[:5])
                return error_response(422, "invalid", f"The query parameters are not valid ({names}).", details)
        return self.get_response(request)


class HistoryContextMiddleware(HistoryMiddleware):
    """pghistory's middleware, for writes only, and not for the sync push: pghistory adds its
    context to every SQL statement of a request, which halves the push's throughput, so the sync
    code adds the context itself around the writes to tracked tables (visits.sync.engine). Reads
    go straight on (PGHISTORY_MIDDLEWARE_METHODS names the writes; asking pghistory's config per
    request costs more than the check)."""

    UNTRACKED_PATHS = ("/api/v1/sync/push",)
    READS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in self.READS or request.path in self.UNTRACKED_PATHS:
            return self.get_response(request)
        return super().__call__(request)


def is_token_api_request(request: HttpRequest) -> bool:
    """An API request whose Authorization header names the Bearer scheme. ninja's bearer
    authentication (api.auth.DeviceTokenAuth, first of the API's authenticators) then decides it,
    valid or not, and the session authenticator is never asked: the same split of the header as
    ninja's HttpBearer (the first word, case-insensitive; an empty token is refused as invalid)."""
    header = request.META.get("HTTP_AUTHORIZATION") or ""
    return bool(header) and request.path.startswith("/api/") and header.split(" ")[0].lower() == "bearer"


class _BrowserOnly(MiddlewareMixin):
    """Put before a Django middleware that only browser pages need: a token-authenticated API
    request goes past it untouched (no session read from the database, no CSRF cookie, no
    messages). Everything else, the map and reports pages' own API calls included, gets it."""

    def __call__(self, request: HttpRequest) -> Any:
        if is_token_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class BrowserSessionMiddleware(_BrowserOnly, SessionMiddleware):
    """Sessions, for browser requests (the map page's API calls use the session)."""


class BrowserAuthenticationMiddleware(_BrowserOnly, AuthenticationMiddleware):
    """The session's user, for browser requests. A token request has no session, so its
    `request.user` is anonymous; the API's caller is `request.auth`."""

    def __call__(self, request: HttpRequest) -> Any:
        if is_token_api_request(request):
            request.user = AnonymousUser()
            return self.get_response(request)
        return super().__call__(request)


class BrowserMessageMiddleware(_BrowserOnly, MessageMiddleware):
    """Django's messages (the admin's notices), for browser requests."""
