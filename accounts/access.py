"""Who may see which users and devices: decided here, used by every endpoint."""

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from accounts.models import DeviceToken, User
from accounts.roles import MUNICIPALITY_WIDE, USER_MANAGERS, Role, rank
from backend.errors import Forbidden, NotAuthenticated

if TYPE_CHECKING:
    from neighborhoods.models import Municipality


def municipality_id_of(user: User) -> int:
    """The municipality a user acts in. Every caller of the API and the sync has one (authentication
    refuses users without); a user without one (a platform superuser) is refused here as there."""
    if user.municipality_id is None:
        raise NotAuthenticated("This account does not belong to a municipality.", code="no_municipality")
    return user.municipality_id


def municipality_of(user: User) -> "Municipality":
    """As municipality_id_of, the Municipality itself."""
    if user.municipality is None:
        raise NotAuthenticated("This account does not belong to a municipality.", code="no_municipality")
    return user.municipality


def visible_users(user: User) -> QuerySet[User]:
    if user.role in MUNICIPALITY_WIDE:
        return User.objects.filter(municipality_id=municipality_id_of(user))
    return User.objects.filter(pk=user.pk)


def manageable_users(user: User) -> QuerySet[User]:
    """The users of a manager's municipality: whose devices they may list and revoke, and among whom
    they find the users they change (may_manage then decides by role)."""
    if user.role in USER_MANAGERS:
        return User.objects.filter(municipality_id=municipality_id_of(user))
    return User.objects.none()


def require_user_manager(user: User) -> None:
    if user.role not in USER_MANAGERS:
        raise Forbidden("Only coordinators and administrators manage users and their devices.")


# --- who manages whom (the rank is accounts.roles.RANK) ------------------------------------------


def may_assign_role(manager: User, role: str) -> bool:
    """Whether `manager` may give someone `role`: never one above their own."""
    return manager.role in USER_MANAGERS and rank(role) <= rank(manager.role)


def may_manage(manager: User, target: User) -> bool:
    """Whether `manager` may change or deactivate `target` (or issue their set-password link): a
    user of their own municipality whose role is not above their own."""
    return (
        manager.role in USER_MANAGERS
        and target.municipality_id is not None
        and target.municipality_id == manager.municipality_id
        and may_assign_role(manager, target.role)
    )


def require_may_assign_role(manager: User, role: str) -> None:
    if not may_assign_role(manager, role):
        raise Forbidden(
            f"role: a {manager.role} cannot give anyone the role {role} (it ranks above their own).",
            code="role_above_own", details=[{"loc": ["body", "role"], "msg": "ranks above your own role"}],
        )


def require_may_manage(manager: User, target: User) -> None:
    """Call with a target found through manageable_users (same municipality), so that another
    municipality's user is a 404 before this is asked."""
    require_user_manager(manager)
    if not may_manage(manager, target):
        raise Forbidden(f"A {manager.role} cannot manage a user whose role is {target.role}.", code="role_above_own")


def require_no_lockout(manager: User, target: User, *, role: str | None, is_active: bool | None) -> None:
    """Nobody demotes or deactivates themselves: a municipality keeps the manager it has."""
    if target.pk != manager.pk:
        return
    if role is not None and role != target.role:
        raise Forbidden("You cannot change your own role; ask another manager.", code="own_account",
                        details=[{"loc": ["body", "role"], "msg": "your own role"}])
    if is_active is False:
        raise Forbidden("You cannot deactivate your own account; ask another manager.", code="own_account",
                        details=[{"loc": ["body", "is_active"], "msg": "your own account"}])


def visible_device_tokens(user: User) -> QuerySet[DeviceToken]:
    if user.role in USER_MANAGERS:
        return DeviceToken.objects.filter(user__municipality_id=municipality_id_of(user))
    return DeviceToken.objects.filter(user=user)


def is_read_only(user: User) -> bool:
    """Supervisors read the whole municipality and change nothing, through the API or the sync."""
    return user.role == Role.SUPERVISOR


def require_writer(user: User) -> None:
    if is_read_only(user):
        raise Forbidden("Supervisors have read-only access.")
