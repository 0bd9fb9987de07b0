"""Authentication, the caller's own identity, and device management."""

from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import paginate
from ninja.throttling import AnonRateThrottle

from accounts import services
from accounts.access import manageable_users, require_user_manager, visible_users
from accounts.models import User
from accounts.roles import MUNICIPALITY_WIDE, Role
from accounts.schemas import DeviceTokenOut, MeOut, TokenIn, TokenOut, UserOut
from api.auth import AuthedRequest
from api.pagination import Paginated
from backend.errors import InvalidInput

router = Router(tags=["auth"])


class LoginAddressThrottle(AnonRateThrottle):
    """Per client address, as accounts.services.client_ip sees it (ninja's own guess trusts
    X-Forwarded-For from anyone, so a rotating header would reset the count)."""

    def get_ident(self, request: HttpRequest) -> str | None:
        return services.client_ip(request)


@router.post(
    "/auth/token",
    auth=None,
    response={201: TokenOut},
    throttle=[LoginAddressThrottle("30/m")],
    summary="Log in a device: username, password and device name give a token",
)
def create_token(request: HttpRequest, payload: TokenIn):
    token, raw = services.login_for_token(
        request=request, username=payload.username, password=payload.password, device_name=payload.device_name
    )
    return Status(201, {"token": raw, "token_id": token.id, "expires_at": token.expires_at})


@router.delete("/auth/token", response={204: None}, summary="Log out this device (revoke its token)")
def delete_token(request: AuthedRequest):
    token = getattr(request, "device_token", None)
    if token is None:
        raise InvalidInput("This request was not made with a device token.", code="no_device_token")
    services.revoke_device_token(token=token, by=request.auth)
    return Status(204, None)


def _scope(user: User) -> dict:
    if user.role in MUNICIPALITY_WIDE:
        return {"kind": "municipality"}
    if user.role == Role.OUTREACH_WORKER:
        return {"kind": "partner_organization", "partner_organization": user.partner_organization}
    return {"kind": "neighborhoods", "neighborhoods": list(user.neighborhoods.order_by("code"))}


@router.get("/me", response=MeOut, summary="Who am I: user, municipality, role and scope")
def me(request: AuthedRequest):
    user = request.auth
    token = getattr(request, "device_token", None)
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "municipality": user.municipality,
        "scope": _scope(user),
        "device_token_id": token.pk if token else None,
    }


@router.get("/me/devices", response=list[DeviceTokenOut], summary="My devices")
@paginate(Paginated)
def my_devices(request: AuthedRequest):
    return request.auth.device_tokens.order_by("-created_at", "pk")


@router.get("/users", response=list[UserOut], summary="Users of my municipality (whole-municipality roles)")
@paginate(Paginated)
def list_users(request: AuthedRequest, role: Role | None = None):
    users = visible_users(request.auth).order_by("username")
    if role:
        users = users.filter(role=role)
    return users


@router.get("/users/{user_id}", response=UserOut, summary="One user")
def get_user(request: AuthedRequest, user_id: int):
    return get_object_or_404(visible_users(request.auth), pk=user_id)


@router.get("/users/{user_id}/devices", response=list[DeviceTokenOut], summary="A user's devices (coordinators)")
@paginate(Paginated)
def list_user_devices(request: AuthedRequest, user_id: int):
    require_user_manager(request.auth)
    user = get_object_or_404(manageable_users(request.auth), pk=user_id)
    return user.device_tokens.order_by("-created_at", "pk")


@router.delete("/users/{user_id}/devices/{token_id}", response={204: None}, summary="Revoke a user's device")
def revoke_user_device(request: AuthedRequest, user_id: int, token_id: UUID):
    require_user_manager(request.auth)
    user = get_object_or_404(manageable_users(request.auth), pk=user_id)
    token = get_object_or_404(user.device_tokens, pk=token_id)
    services.revoke_device_token(token=token, by=request.auth)
    return Status(204, None)
