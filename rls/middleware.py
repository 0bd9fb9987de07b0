"""Every request runs in a tenant scope (backend.tenancy): nothing at first, the signed-in
browser user's once the session names one, the token holder's once the API authenticates it
(api.auth). The scope is left when the response is made, and the connection's session settings
are returned to the outside values (the login role, no tenant) at once, not at its next query:
connections persist between requests (CONN_MAX_AGE), so an idle connection between two requests
never holds a tenant or a role, whatever the next user of it does first."""

from collections.abc import Callable

from django.contrib.auth import SESSION_KEY
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from psycopg.pq import TransactionStatus

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
            if not tenancy.in_scope():
                return_to_outside()

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


def return_to_outside(alias: str = "default") -> None:
    """Make the connection's settings the outside ones now, if the request left them changed (one
    statement; none when its last statement already returned to them, backend.tenancy.execute(last=True),
    as a tile's does). Not on a closed connection, nor inside a failed transaction (its rollback
    undoes what it set, and tenancy makes anything older right before the next query). A
    connection that cannot be reset otherwise is closed rather than handed to the next request."""
    conn = connections[alias]
    raw = conn.connection
    if raw is None or raw.closed or raw.info.transaction_status == TransactionStatus.INERROR:
        return
    try:
        with conn.wrap_database_errors:
            tenancy.apply_now(conn)
    except DatabaseError:
        if not conn.in_atomic_block:
            conn.close()
