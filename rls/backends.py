"""Signing in by username and password under row-level security: before anyone is known no
tenant is set and every user row is invisible, so the username's scope is looked up first
(backend.tenancy.lookup_scope) and the user is read, and the password checked, inside it."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from backend import tenancy


class TenantScopedModelBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> Any:
        if username is None or password is None:
            return None
        found = tenancy.lookup_scope("username", username)
        if not tenancy.in_scope():  # outside a request (a command, a test's client.login()): just here
            with tenancy.entered(found):
                return super().authenticate(request, username=username, password=password, **kwargs)
        # In a request: the rest of it (the session, the token, the audit row) is the user's.
        tenancy.switch(found)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            tenancy.switch(tenancy.NOTHING)
        return user
