"""How API callers prove who they are: a device token (tablets, phones) or the browser session
(the supervisors' map page, with CSRF). Both give `request.auth` = the user."""

import pghistory
from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from accounts.models import User
from accounts.services import resolve_token
from backend.errors import NotAuthenticated


class DeviceTokenAuth(HttpBearer):
    openapi_description = "A device token from POST /api/v1/auth/token."

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        device_token = resolve_token(token)
        request.device_token = device_token
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
        request.device_token = None
        return user


default_auth = [DeviceTokenAuth(), MunicipalSessionAuth()]
