"""Every request runs in a tenant scope (backend.tenancy): nothing at first, the signed-in
browser user's once the session names one, the token holder's once the API authenticates it
(api.auth). The scope is left when the response is made, so a reused database connection never
carries one request's tenant or role into the next."""

from collections.abc import Callable

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse

from backend import tenancy


class TenantScopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenancy.enter(self._session_scope(request))
        try:
            return self.get_response(request)
        finally:
            tenancy.leave()

    @staticmethod
    def _session_scope(request: HttpRequest) -> tenancy.Scope:
        session = getattr(request, "session", None)
        user_id = session.get(SESSION_KEY) if session is not None else None
        if user_id is None:
            return tenancy.NOTHING
        try:
            return tenancy.lookup_scope("user", int(user_id))
        except (TypeError, ValueError):
            return tenancy.NOTHING
