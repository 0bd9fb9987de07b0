"""Responses under /api/ that Django makes outside ninja's handlers (405 from a route's method
check, CSRF 403 …) are given the API's JSON error body too."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
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
    code adds the context itself around the writes to tracked tables (visits.sync.engine)."""

    UNTRACKED_PATHS = ("/api/v1/sync/push",)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in self.UNTRACKED_PATHS:
            return self.get_response(request)
        return super().__call__(request)
