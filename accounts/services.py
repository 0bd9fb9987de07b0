"""Writes about users and devices. The only place tokens are made, checked and revoked."""

import functools
import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from python_ipware import IpWare

from accounts.models import DeviceToken, User
from accounts.roles import Role
from backend.errors import InvalidInput, NotAuthenticated, RateLimited

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


def resolve_token(raw: str) -> DeviceToken:
    """The active token for a raw bearer token, with its user. Checked on every request: a revoked
    or expired token, or a deactivated user, is refused at once (no cache)."""
    if not raw.startswith(TOKEN_PREFIX):
        raise NotAuthenticated("The token is not valid.", code="invalid_token")
    token = (
        DeviceToken.objects.select_related("user", "user__municipality", "user__partner_organization")
        .filter(token_hash=hash_token(raw))
        .first()
    )
    if token is None:
        raise NotAuthenticated("The token is not valid.", code="invalid_token")
    if token.revoked_at is not None:
        raise NotAuthenticated("The token has been revoked.", code="token_revoked")
    now = timezone.now()
    if token.expires_at <= now:
        raise NotAuthenticated("The token has expired; log in again.", code="token_expired")
    if not token.user.is_active:
        raise NotAuthenticated("The account is disabled.", code="account_disabled")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        DeviceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def revoke_device_token(*, token: DeviceToken, by: User) -> DeviceToken:
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
) -> User:
    """Create a user with one role in one municipality; full_clean() keeps the role rules."""
    user = User(
        municipality=municipality,
        username=username,
        role=role,
        display_name=display_name,
        partner_organization=partner_organization,
        is_staff=is_staff,
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
