"""Which address a login is counted against: X-Forwarded-For only counts when the request comes
from a configured proxy (TSUNAGU_TRUSTED_PROXIES), so a client cannot reset its limits by
inventing one."""

import pytest
from django.test import RequestFactory

from accounts.services import client_ip
from tests.accounts.test_tokens import login
from tests.api.test_errors import assert_error_body

PROXY = "10.1.2.3"
ATTACKER = "198.51.100.66"


def _meta(remote: str, xff: str | None = None) -> dict:
    meta = {"REMOTE_ADDR": remote}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    return meta


def test_rotating_forwarded_for_from_an_untrusted_address_is_still_locked_out(town, anon, settings):
    settings.TSUNAGU_TRUSTED_PROXIES = [PROXY]
    username = town.users["coordinator"].username
    for n in range(settings.AXES_FAILURE_LIMIT):
        r = login(anon, username, "wrong", **_meta(ATTACKER, f"203.0.113.{n + 1}"))
        assert r.status_code == 401, r.content
    r = login(anon, username, **_meta(ATTACKER, "203.0.113.200"))
    assert_error_body(r, 429, "login_locked")


def test_spraying_many_users_with_rotating_forwarded_for_hits_the_address_throttle(town, anon, settings):
    """The per-address throttle of the login endpoint (30 a minute) counts the real peer."""
    settings.TSUNAGU_TRUSTED_PROXIES = [PROXY]
    statuses = [
        login(anon, f"nobody-{n}", "Spring2025!", **_meta(ATTACKER, f"203.0.113.{n + 1}")).status_code
        for n in range(31)
    ]
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(town, anon, settings):
    settings.TSUNAGU_TRUSTED_PROXIES = ["10.1.0.0/16"]
    username = town.users["coordinator"].username
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert login(anon, username, "wrong", **_meta(PROXY, "203.0.113.7")).status_code == 401
    assert_error_body(login(anon, username, **_meta(PROXY, "203.0.113.7")), 429, "login_locked")
    # another client behind the same proxy is not locked out, and its token records its address
    r = login(anon, username, **_meta(PROXY, "203.0.113.8"))
    assert r.status_code == 201, r.content
    from accounts.models import DeviceToken

    assert DeviceToken.objects.get(pk=r.json()["token_id"]).created_ip == "203.0.113.8"


@pytest.mark.parametrize(
    ("trusted", "remote", "xff", "expected"),
    [
        ([], "192.0.2.1", "203.0.113.5", "192.0.2.1"),  # nothing trusted: the header is ignored
        (["10.0.0.0/8"], "192.0.2.1", "203.0.113.5", "192.0.2.1"),  # not from a proxy
        (["10.0.0.0/8"], "10.0.0.9", "203.0.113.5", "203.0.113.5"),
        (["10.0.0.0/8"], "10.0.0.9", None, "10.0.0.9"),
        # the client prepends a lie; the proxy appended what it saw: the right-most untrusted hop wins
        (["10.0.0.0/8"], "10.0.0.9", "1.2.3.4, 203.0.113.5", "203.0.113.5"),
        # two proxies: both skipped
        (["10.0.0.0/8", "172.16.0.1"], "10.0.0.9", "1.2.3.4, 203.0.113.5, 172.16.0.1", "203.0.113.5"),
        (["10.0.0.0/8"], "10.0.0.9", "203.0.113.5:4711", "203.0.113.5"),
        (["10.0.0.0/8"], "10.0.0.9", "[2001:db8::5]:443", "2001:db8::5"),
        (["fd00::/8"], "fd00::1", "2001:db8::5", "2001:db8::5"),
        # garbage where the proxy's entry should be: stop at the last address we can vouch for
        (["10.0.0.0/8"], "10.0.0.9", "203.0.113.5, not-an-ip", "10.0.0.9"),
        (["10.0.0.0/8"], "10.0.0.9", "10.0.0.7", "10.0.0.7"),  # only proxies: the farthest one
    ],
)
def test_client_ip(settings, trusted, remote, xff, expected):
    settings.TSUNAGU_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", **_meta(remote, xff))
    assert client_ip(request) == expected


def test_axes_counts_the_same_address(settings):
    from axes.helpers import get_client_ip_address

    settings.TSUNAGU_TRUSTED_PROXIES = ["10.0.0.0/8"]
    for meta in (_meta("10.0.0.9", "1.2.3.4, 203.0.113.5"), _meta(ATTACKER, "203.0.113.5")):
        request = RequestFactory().post("/", **meta)
        assert get_client_ip_address(request) == client_ip(request)


def test_a_trusted_proxy_that_is_not_an_address_stops_the_start():
    import os
    import subprocess
    import sys

    env = {**os.environ, "TSUNAGU_ENV": "test", "TSUNAGU_TRUSTED_PROXIES": "10.0.0.0/8, nginx"}
    result = subprocess.run(
        [sys.executable, "-c", "import backend.settings"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "TSUNAGU_TRUSTED_PROXIES: 'nginx' is not an IP address or CIDR" in result.stderr
