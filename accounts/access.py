"""Who may see which users and devices: decided here, used by every endpoint."""

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from accounts.models import DeviceToken, User
from accounts.roles import MUNICIPALITY_WIDE, USER_MANAGERS, Role
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
    """Users whose devices this user may list and revoke."""
    if user.role in USER_MANAGERS:
        return User.objects.filter(municipality_id=municipality_id_of(user))
    return User.objects.none()


def require_user_manager(user: User) -> None:
    if user.role not in USER_MANAGERS:
        raise Forbidden("Only coordinators and administrators manage users' devices.")


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
