"""Writes about users and devices. The only place tokens are made, checked and revoked."""

import functools
import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Any

import psycopg
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q
from django.db.models.base import DEFERRED
from django.db.models.fields import Field
from django.http import HttpRequest
from django.utils import timezone
from python_ipware import IpWare

from accounts import access
from accounts.links import SetPasswordLink, make_link
from accounts.models import DeviceToken, User
from accounts.roles import Role
from backend import tenancy
from backend.errors import Conflict, InvalidInput, NotAuthenticated, RateLimited
from neighborhoods.models import Municipality
from visits.models import PartnerOrganization

TOKEN_PREFIX = "tsn_"  # noqa: S105 (a marker, not a secret)
# last_used_at is refreshed at most this often, so an authenticated request is not also a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# Parses one hop of X-Forwarded-For ("203.0.113.5", "203.0.113.5:4711", "[2001:db8::5]:443").
_HOP_PARSER = IpWare(precedence=("HOP",))


@functools.lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(entry, strict=False) for entry in entries)


def _parse_hop(text: str) -> IPv4Address | IPv6Address | None:
    hop, _ = _HOP_PARSER.get_client_ip({"HOP": text.strip()})
    return hop


def client_ip(request: HttpRequest) -> str | None:
    """The address a request comes from, the one login limits and audit rows count.

    X-Forwarded-For is believed only as far as it was written by proxies in
    TSUNAGU_TRUSTED_PROXIES: starting from the peer (REMOTE_ADDR), each trusted hop vouches for the
    entry to its left; the first untrusted one is the client. Anything a client put in the header
    itself lies further left and is never reached. django-axes asks this same function
    (AXES_CLIENT_IP_CALLABLE), so both count one address."""
    remote = request.META.get("REMOTE_ADDR") or None
    trusted = _trusted_networks(tuple(settings.TSUNAGU_TRUSTED_PROXIES))
    peer = _parse_hop(remote) if remote and trusted else None
    if peer is None:
        return remote

    def is_proxy(address: IPv4Address | IPv6Address) -> bool:
        return any(address.version == net.version and address in net for net in trusted)

    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop for hop in forwarded.split(",") if hop.strip()] if forwarded else []
    current = peer
    while is_proxy(current) and hops:
        previous = _parse_hop(hops.pop())
        if previous is None:
            break  # a trusted proxy would not write this; keep the last address it vouched for
        current = previous
    return str(current)


def login_for_token(*, request: HttpRequest, username: str, password: str, device_name: str) -> tuple[DeviceToken, str]:
    """Check a password and issue a device token. Failed attempts count towards a lockout per
    (username, address) kept by django-axes; a locked-out pair gets RateLimited before the password
    is even looked at."""
    credentials = {"username": username}
    if not AxesProxyHandler.is_allowed(request, credentials):
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
        raise RateLimited(
            f"Too many failed logins for this user from this address; try again in {minutes} minutes.",
            code="login_locked",
            retry_after=int(settings.AXES_COOLOFF_TIME.total_seconds()),
        )
    user = authenticate(request, username=username, password=password)
    if user is None:
        # django-axes has counted this failure (and may have locked the pair). This attempt is
        # answered 401 by us; the lockout applies from the next attempt (the check above).
        request.axes_locked_out = False  # type: ignore[attr-defined]  # django-axes' own flag on the request
        raise NotAuthenticated("Wrong username or password, or the account is disabled.", code="invalid_credentials")
    if user.municipality_id is None:
        raise NotAuthenticated("This account does not belong to a municipality.", code="no_municipality")
    return issue_device_token(user=user, device_name=device_name, ip=client_ip(request))


@transaction.atomic
def issue_device_token(*, user: User, device_name: str, ip: str | None = None) -> tuple[DeviceToken, str]:
    device_name = device_name.strip()
    if not device_name:
        raise InvalidInput("device_name must not be empty", details=[{"loc": ["body", "device_name"]}])
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = DeviceToken.objects.create(
        user=user,
        name=device_name[:100],
        token_hash=hash_token(raw),
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        expires_at=timezone.now() + timedelta(days=settings.TSUNAGU_TOKEN_TTL_DAYS),
        created_ip=ip,
    )
    return token, raw


# The token check's one statement (rls/schema.py, tsunagu_token_holder): the token, its
# holder, the holder's municipality and corporation, as (model, columns) in the order selected.
_HOLDER_PARTS = (("token", DeviceToken), ("holder", User), ("municipality", Municipality),
                 ("corporation", PartnerOrganization))


def _loaded_columns(model: type[models.Model]) -> list[Field]:
    """The columns read straight into an instance: those psycopg gives as Django holds them. A
    column that needs Django's converters (a geometry) is left deferred; it loads if ever read."""
    fields = []
    for f in model._meta.concrete_fields:
        if f.get_db_converters(connection) or connection.ops.get_db_converters(f.get_col(model._meta.db_table)):
            continue
        fields.append(f)
    return fields


@functools.cache
def _holder_statement() -> tuple[str, tuple[tuple[type[models.Model], tuple[Field, ...]], ...]]:
    parts = tuple((model, tuple(_loaded_columns(model))) for _name, model in _HOLDER_PARTS)
    columns = ", ".join(
        f"(h.{name}).{connection.ops.quote_name(str(f.column))}"
        for (name, _model), (_m, fields) in zip(_HOLDER_PARTS, parts, strict=True)
        for f in fields
    )
    return columns, parts


def _instances(row: Sequence[Any]) -> list[models.Model | None]:
    """The row of the token check as model instances, as the ORM would have made them."""
    _columns, parts = _holder_statement()
    out: list[models.Model | None] = []
    position = 0
    for model, fields in parts:
        values = row[position : position + len(fields)]
        position += len(fields)
        if values[0] is None:  # a LEFT JOIN that found nothing (a holder without a corporation)
            out.append(None)
            continue
        by_name = dict(zip((f.attname for f in fields), values, strict=True))
        full = [by_name.get(f.attname, DEFERRED) for f in model._meta.concrete_fields]
        out.append(model.from_db(connection.alias, list(by_name), full))
    return out


def _read_holder(token_hash: str) -> DeviceToken | None:
    """One statement over the open connection, before the caller's tenant is known (the function is
    SECURITY DEFINER, so it needs no tenant setting; it runs on the raw connection, as the tenancy's
    own settings do, so it does not first set the empty scope it would not use). It does not make
    the holder's tenant settings in passing: a request that makes no query after it (`GET /me`)
    would then owe the connection a reset at its end, two round trips where one does (measured:
    /me went from 1.6-2.0x its raw lookup to 2.2-3.0x); a request that queries sets them before its
    first query instead."""
    columns, _parts = _holder_statement()
    sql = f"SELECT {columns} FROM tsunagu_token_holder(%s) h"  # noqa: S608 - names from the models
    connection.ensure_connection()
    # Bound server-side, so it is prepared once per connection (backend.db.prepared_cursor): 0.2 ms
    # where parsing and planning it at every request made it 0.5 ms.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        row = cursor.execute(sql, [token_hash]).fetchone()
    if row is None:
        return None
    token, user, municipality, corporation = _instances(row)
    assert isinstance(token, DeviceToken) and isinstance(user, User)
    User._meta.get_field("municipality").set_cached_value(user, municipality)
    User._meta.get_field("partner_organization").set_cached_value(user, corporation)
    DeviceToken._meta.get_field("user").set_cached_value(token, user)
    return token


def resolve_token(raw: str) -> DeviceToken:
    """The active token for a raw bearer token, with its user, the user's municipality and
    corporation, in one indexed statement. Checked on every request: a revoked or expired token,
    or a deactivated user, is refused at once (no cache). The caller then enters the holder's
    tenant scope and calls `record_token_use`."""
    if not raw.startswith(TOKEN_PREFIX):
        raise NotAuthenticated("The token is not valid.", code="invalid_token")
    token = _read_holder(hash_token(raw))
    if token is None:
        raise NotAuthenticated("The token is not valid.", code="invalid_token")
    if token.revoked_at is not None:
        raise NotAuthenticated("The token has been revoked.", code="token_revoked")
    if token.expires_at <= timezone.now():
        raise NotAuthenticated("The token has expired; log in again.", code="token_expired")
    if not token.user.is_active:
        raise NotAuthenticated("The account is disabled.", code="account_disabled")
    return token


def record_token_use(token: DeviceToken) -> None:
    """Refresh last_used_at, at most every LAST_USED_RESOLUTION, so that an authenticated request
    is not also a write. In the holder's tenant scope (row-level security)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        DeviceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


@transaction.atomic
def revoke_device_token(*, token: DeviceToken, by: User | None) -> DeviceToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = by
        token.save(update_fields=["revoked_at", "revoked_by"])
    return token


@transaction.atomic
def create_user(
    *,
    municipality,
    username: str,
    role: Role | str,
    password: str | None,
    display_name: str = "",
    partner_organization=None,
    neighborhoods: Iterable = (),
    is_staff: bool = False,
    email: str = "",
) -> User:
    """Create a user with one role in one municipality; full_clean() keeps the role rules."""
    user = User(
        municipality=municipality,
        username=username,
        role=role,
        display_name=display_name,
        partner_organization=partner_organization,
        is_staff=is_staff,
        email=email,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    if neighborhoods:
        user.neighborhoods.set(neighborhoods)
    return user


def purge_stale_tokens(*, older_than_days: int = 90) -> int:
    """Delete tokens that expired or were revoked more than `older_than_days` ago. Idempotent:
    a second run finds nothing more to delete."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    stale = DeviceToken.objects.filter(Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff))
    deleted, _ = stale.delete()
    return deleted


# --- user management: managers through the API, operators through import_users ----------------------
# `by` is the manager making the change (the rank rules of accounts.access apply), or None for the
# platform operator's import command (which acts for the whole municipality).

# Login IDs are typed on tablets: ASCII letters, digits and @ . + - _ (Django's own set, without the
# non-ASCII letters its default validator also lets through).
USERNAME_PATTERN = r"^[A-Za-z0-9_.@+-]+$"
USERNAME_MAX_LENGTH = 150
_USERNAME = re.compile(r"[A-Za-z0-9_.@+-]+")
_EMAIL = EmailValidator()


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a user's fields: which field, and why (the API turns the field into a
    `loc`, the import into a column)."""

    field: str
    message: str
    index: int | None = None  # the position in a list field (neighborhoods)


def username_problem(username: str) -> str | None:
    if not username:
        return "is required"
    if len(username) > USERNAME_MAX_LENGTH:
        return f"is {len(username)} characters long (at most {USERNAME_MAX_LENGTH})"
    if not _USERNAME.fullmatch(username):
        return f"{username!r}: only ASCII letters, digits and @ . + - _ are allowed"
    return None


def email_problem(email: str) -> str | None:
    if not email:
        return None
    try:
        _EMAIL(email)
    except ValidationError:
        return f"{email!r} is not an email address"
    return None


def role_field_problems(*, role: str, partner_organization: Any, neighborhoods: Sequence[Any]) -> list[Problem]:
    """What a role needs and what it may not have: an outreach worker (訪問員) belongs to a
    corporation, a 民生委員 (commissioner) has at least one 自治会; no other role has either. The
    model's check constraint stays the last line for the corporation."""
    problems = []
    if role == Role.OUTREACH_WORKER and partner_organization is None:
        problems.append(Problem("partner_organization", "an outreach worker (訪問員) needs the corporation they work for"))
    if role != Role.OUTREACH_WORKER and partner_organization is not None:
        problems.append(Problem("partner_organization", f"only an outreach worker (訪問員) belongs to a corporation, not a {role}"))
    if role == Role.COMMISSIONER and not neighborhoods:
        problems.append(Problem("neighborhoods", "a 民生委員 (commissioner) needs at least one 自治会"))
    if role != Role.COMMISSIONER and neighborhoods:
        problems.append(Problem("neighborhoods", f"only a 民生委員 (commissioner) has 自治会, not a {role}"))
    return problems


def _refuse(problems: Sequence[Problem]) -> None:
    if problems:
        details = [
            {"loc": ["body", p.field, *(() if p.index is None else (p.index,))], "msg": p.message} for p in problems
        ]
        raise InvalidInput("; ".join(f"{p.field}: {p.message}" for p in problems), details=details)


def resolve_assignment(
    *, municipality_id: int, partner_organization_id: int | None, neighborhood_ids: Sequence[int]
) -> tuple[Any, list[Any]]:
    """The corporation and 自治会 named by id, of this municipality only: an id of another
    municipality is refused exactly like one that does not exist (422 at its position)."""
    from neighborhoods.models import Neighborhood
    from visits.models import PartnerOrganization

    problems = []
    partner = None
    if partner_organization_id is not None:
        partner = PartnerOrganization.objects.filter(municipality_id=municipality_id, pk=partner_organization_id).first()
        if partner is None:
            problems.append(Problem("partner_organization", f"no corporation {partner_organization_id} in this municipality"))
    found = Neighborhood.objects.filter(municipality_id=municipality_id, pk__in=neighborhood_ids).in_bulk()
    seen: set[int] = set()
    for index, hood_id in enumerate(neighborhood_ids):
        if hood_id not in found:
            problems.append(Problem("neighborhoods", f"no 自治会 {hood_id} in this municipality", index))
        elif hood_id in seen:
            problems.append(Problem("neighborhoods", f"自治会 {hood_id} is listed twice", index))
        seen.add(hood_id)
    _refuse(problems)
    return partner, [found[i] for i in dict.fromkeys(neighborhood_ids)]


def _check_assignment(municipality_id: int, partner: Any, neighborhoods: Sequence[Any]) -> None:
    """Objects handed in directly (by the import) belong to the user's municipality too."""
    problems = []
    if partner is not None and partner.municipality_id != municipality_id:
        problems.append(Problem("partner_organization", "the corporation belongs to another municipality"))
    problems += [Problem("neighborhoods", "the 自治会 belongs to another municipality", i)
                 for i, hood in enumerate(neighborhoods) if hood.municipality_id != municipality_id]
    _refuse(problems)


def _refuse_taken_username(username: str) -> None:
    """Usernames are global (one login for the whole service). Another municipality's users are
    invisible under row-level security; the database's lookup says whether the name is in use
    (an inactive user elsewhere is caught by the unique index when the row is written)."""
    if User.objects.filter(username=username).exists() or tenancy.lookup_scope("username", username) != tenancy.NOTHING:
        raise Conflict(f"username: {username!r} is already in use.", code="username_taken",
                       details=[{"loc": ["body", "username"], "msg": "already in use"}])


@transaction.atomic
def register_user(
    *,
    municipality,
    by: User | None,
    username: str,
    role: str,
    display_name: str,
    email: str = "",
    partner_organization=None,
    neighborhoods: Sequence = (),
) -> User:
    """A new user of `municipality` without a usable password: they choose one through a
    set-password link (issue_set_password_link)."""
    if by is not None:
        access.require_user_manager(by)
        access.require_may_assign_role(by, role)
        if by.municipality_id != municipality.pk:
            raise InvalidInput("A manager adds users to their own municipality only.")
    problems = [Problem("username", p) for p in [username_problem(username)] if p]
    problems += [Problem("email", p) for p in [email_problem(email)] if p]
    problems += role_field_problems(role=role, partner_organization=partner_organization, neighborhoods=neighborhoods)
    _refuse(problems)
    _check_assignment(municipality.pk, partner_organization, neighborhoods)
    _refuse_taken_username(username)
    try:
        with transaction.atomic():
            return create_user(
                municipality=municipality, username=username, role=role, password=None, display_name=display_name,
                email=email, partner_organization=partner_organization, neighborhoods=neighborhoods,
            )
    except IntegrityError as exc:  # the unique index: a name taken by an inactive user elsewhere
        raise Conflict(f"username: {username!r} is already in use.", code="username_taken",
                       details=[{"loc": ["body", "username"], "msg": "already in use"}]) from exc


CHANGEABLE = ("role", "display_name", "email", "partner_organization", "neighborhoods", "is_active")


@dataclass
class UserChange:
    user: User
    changed: dict[str, list[Any]] = field(default_factory=dict)  # field -> [before, after] (ids for objects)
    revoked_devices: int = 0


@transaction.atomic
def change_user(*, user: User, by: User | None, changes: dict[str, Any]) -> UserChange:
    """Change a user's role, name, email, corporation, 自治会 or whether the account is active.
    Absent keys stay as they are, except that leaving the worker or commissioner role drops the
    corporation or the 自治会 that only that role has. Deactivating revokes every device token of
    the user at once. Never touches the password."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise InvalidInput(f"These user fields cannot be changed: {', '.join(sorted(unknown))}.")
    if by is not None:
        access.require_may_manage(by, user)
        if "role" in changes:
            access.require_may_assign_role(by, changes["role"])
        access.require_no_lockout(by, user, role=changes.get("role"), is_active=changes.get("is_active"))
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.municipality_id is None:
        raise InvalidInput("Platform operators are managed in the Django admin.")
    role = str(changes.get("role", locked.role))
    partner = changes.get("partner_organization", locked.partner_organization if role == Role.OUTREACH_WORKER else None)
    hoods_before = sorted(locked.neighborhoods.values_list("pk", flat=True))
    if "neighborhoods" in changes:
        hoods = list(changes["neighborhoods"])
    else:
        hoods = list(locked.neighborhoods.all()) if role == Role.COMMISSIONER else []
    problems = [Problem("email", p) for p in [email_problem(changes.get("email", ""))] if p]
    problems += role_field_problems(role=role, partner_organization=partner, neighborhoods=hoods)
    _refuse(problems)
    _check_assignment(locked.municipality_id, partner, hoods)

    result = UserChange(user=locked)
    wanted = {
        "role": role,
        "display_name": changes.get("display_name", locked.display_name),
        "email": changes.get("email", locked.email),
        "partner_organization_id": partner.pk if partner is not None else None,
        "is_active": changes.get("is_active", locked.is_active),
    }
    for name, value in wanted.items():
        before = getattr(locked, name)
        if before != value:
            result.changed[name.removesuffix("_id")] = [before, value]
            setattr(locked, name, value)
    if result.changed:
        locked.save(update_fields=[n for n in wanted if n.removesuffix("_id") in result.changed])
    hoods_after = sorted(h.pk for h in hoods)
    if hoods_after != hoods_before:
        locked.neighborhoods.set(hoods)
        result.changed["neighborhoods"] = [hoods_before, hoods_after]
    if result.changed.get("is_active") == [True, False]:
        for token in DeviceToken.objects.active().filter(user=locked):
            revoke_device_token(token=token, by=by)
            result.revoked_devices += 1
    return result


def issue_set_password_link(*, user: User, by: User | None) -> SetPasswordLink:
    """A one-time link for `user` to choose a password (or a new one). Writes nothing: every
    earlier link stays valid until one of them is used or they expire."""
    if by is not None:
        access.require_may_manage(by, user)
    if not user.is_active:
        raise Conflict("The account is deactivated; reactivate it first.", code="account_disabled")
    if user.municipality_id is None:
        raise InvalidInput("Set-password links are for the users of a municipality.")
    return make_link(user)
