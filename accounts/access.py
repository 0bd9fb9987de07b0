"""Who may see which users and devices: decided here, used by every endpoint."""

from django.db.models import QuerySet

from accounts.models import DeviceToken, User
from accounts.roles import MUNICIPALITY_WIDE, USER_MANAGERS, Role
from backend.errors import Forbidden


def visible_users(user: User) -> QuerySet[User]:
    if user.role in MUNICIPALITY_WIDE:
        return User.objects.filter(municipality_id=user.municipality_id)
    return User.objects.filter(pk=user.pk)


def manageable_users(user: User) -> QuerySet[User]:
    """Users whose devices this user may list and revoke."""
    if user.role in USER_MANAGERS:
        return User.objects.filter(municipality_id=user.municipality_id)
    return User.objects.none()


def require_user_manager(user: User) -> None:
    if user.role not in USER_MANAGERS:
        raise Forbidden("Only coordinators and administrators manage users' devices.")


def visible_device_tokens(user: User) -> QuerySet[DeviceToken]:
    if user.role in USER_MANAGERS:
        return DeviceToken.objects.filter(user__municipality_id=user.municipality_id)
    return DeviceToken.objects.filter(user=user)


def is_read_only(user: User) -> bool:
    """Supervisors read the whole municipality and change nothing, through the API or the sync."""
    return user.role == Role.SUPERVISOR


def require_writer(user: User) -> None:
    if is_read_only(user):
        raise Forbidden("Supervisors have read-only access.")
