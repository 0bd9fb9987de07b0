"""Authentication, the caller's own identity, and device management."""

from uuid import UUID

from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status
from ninja.pagination import paginate
from ninja.throttling import AnonRateThrottle

from accounts import services
from accounts.access import (
    manageable_users,
    municipality_id_of,
    municipality_of,
    require_user_manager,
    visible_users,
)
from accounts.models import User
from accounts.roles import MUNICIPALITY_WIDE, Role
from accounts.schemas import (
    DeviceTokenOut,
    MeOut,
    SetPasswordLinkOut,
    TokenIn,
    TokenOut,
    UserChangedOut,
    UserCreatedOut,
    UserIn,
    UserOut,
    UserPatch,
)
from api.auth import AuthedRequest
from api.pagination import Paginated
from audit.services import record_change
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


def _users(request: AuthedRequest):
    return visible_users(request.auth).prefetch_related("neighborhoods")


@router.get("/users", response=list[UserOut], summary="Users of my municipality (whole-municipality roles)")
@paginate(Paginated)
def list_users(request: AuthedRequest, role: Role | None = None, active: bool | None = None):
    users = _users(request).order_by("username")
    if role:
        users = users.filter(role=role)
    if active is not None:
        users = users.filter(is_active=active)
    return users


@router.get("/users/{user_id}", response=UserOut, summary="One user")
def get_user(request: AuthedRequest, user_id: int):
    return get_object_or_404(_users(request), pk=user_id)


@router.post("/users", response={201: UserCreatedOut},
             summary="Add a user, without a password: the answer carries their one-time set-password link (managers; audited)")
def create_user(request: AuthedRequest, payload: UserIn):
    require_user_manager(request.auth)
    town = municipality_of(request.auth)
    partner, hoods = services.resolve_assignment(
        municipality_id=town.pk, partner_organization_id=payload.partner_organization, neighborhood_ids=payload.neighborhoods
    )
    with transaction.atomic():
        user = services.register_user(
            municipality=town, by=request.auth, username=payload.username, role=payload.role.value,
            display_name=payload.display_name, email=payload.email, partner_organization=partner, neighborhoods=hoods,
        )
        link = services.issue_set_password_link(user=user, by=request.auth)
        record_change(request, user, basis=f"role:{request.auth.role}", detail={
            "created": {"username": user.username, "role": user.role, "partner_organization": user.partner_organization_id,
                        "neighborhoods": sorted(h.pk for h in hoods)},
            "set_password_link": {"expires_at": link.expires_at.isoformat()},
        })
    created = get_object_or_404(_users(request), pk=user.pk)
    created.set_password_url, created.set_password_expires_at = link.url, link.expires_at
    return Status(201, created)


@router.patch("/users/{user_id}", response=UserChangedOut,
              summary="Change a user's role, name, email, corporation or 自治会, or deactivate them (managers; audited)")
def change_user(request: AuthedRequest, user_id: int, payload: UserPatch):
    require_user_manager(request.auth)
    user = get_object_or_404(manageable_users(request.auth), pk=user_id)
    town_id = municipality_id_of(request.auth)
    changes = payload.model_dump(exclude_unset=True)
    if "role" in changes:
        changes["role"] = Role(changes["role"]).value
    if "partner_organization" in changes or "neighborhoods" in changes:
        partner, hoods = services.resolve_assignment(
            municipality_id=town_id, partner_organization_id=changes.get("partner_organization"),
            neighborhood_ids=changes.get("neighborhoods", []),
        )
        changes.update({k: v for k, v in (("partner_organization", partner), ("neighborhoods", hoods)) if k in changes})
    with transaction.atomic():
        result = services.change_user(user=user, by=request.auth, changes=changes)
        if result.changed:
            record_change(request, user, basis=f"role:{request.auth.role}",
                          detail={**result.changed, "revoked_devices": result.revoked_devices})
    changed = get_object_or_404(_users(request), pk=user.pk)
    changed.changed, changed.revoked_devices = sorted(result.changed), result.revoked_devices
    return changed


@router.post("/users/{user_id}/set-password-link", response={201: SetPasswordLinkOut},
             summary="Issue a one-time link for a user to choose a password (managers; audited)")
def issue_set_password_link(request: AuthedRequest, user_id: int):
    require_user_manager(request.auth)
    user = get_object_or_404(manageable_users(request.auth), pk=user_id)
    link = services.issue_set_password_link(user=user, by=request.auth)
    record_change(request, user, basis=f"role:{request.auth.role}",
                  detail={"set_password_link": {"expires_at": link.expires_at.isoformat()}})
    return Status(201, {"url": link.url, "expires_at": link.expires_at})


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
