"""How API callers prove who they are: a device token (tablets, phones) or the browser session
(the supervisors' map page, with CSRF). Both give `request.auth` = the user."""

from typing import cast

import pghistory
from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from accounts.models import DeviceToken, User
from accounts.services import record_token_use, resolve_token
from backend import tenancy
from backend.errors import NotAuthenticated


class AuthedRequest(HttpRequest):
    """The request an authenticated API handler receives (for the type checker only: ninja ignores
    the annotation of `request`). ninja sets `auth` to what the authenticator returned; ours set
    `device_token` (None for a browser session)."""

    auth: User
    device_token: DeviceToken | None


class DeviceTokenAuth(HttpBearer):
    openapi_description = "A device token from POST /api/v1/auth/token."

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        # One statement reads the token with its holder (before any tenant is set: a SECURITY
        # DEFINER function, as the scope lookups are); the request then runs in the holder's scope.
        device_token = resolve_token(token)
        tenancy.switch(tenancy.Scope(municipality_id=device_token.user.municipality_id))
        record_token_use(device_token)
        cast(AuthedRequest, request).device_token = device_token
        # Tracked writes of this request (pghistory) record who made them.
        pghistory.context(user=device_token.user_id, device_token=str(device_token.pk))
        return device_token.user


class MunicipalSessionAuth(SessionAuth):
    """A logged-in browser session of a user who belongs to a municipality."""

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = super().authenticate(request, key)
        if user is None:
            return None
        if not user.is_active or user.municipality_id is None:
            raise NotAuthenticated("This account cannot use the API.", code="no_municipality")
        cast(AuthedRequest, request).device_token = None
        return user


default_auth = [DeviceTokenAuth(), MunicipalSessionAuth()]
