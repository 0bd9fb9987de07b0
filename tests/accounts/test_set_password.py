"""One-time set-password links: the page sets a password with the project's validators, the user
then logs in through the API, and a link works once, until it expires, for an active user only."""

import datetime as dt
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from tests import factories
from tests.conftest import ApiClient

NEW_PASSWORD = "mizu-to-midori-2026"



def _new_user(town, **body) -> tuple[User, str]:
    """A supervisor added by the town's admin through the API, and the path of their link."""
    r = town.client("admin").post("users", {"username": "hanako", "display_name": "山田 花子", "role": "supervisor", **body})
    assert r.status_code == 201, r.content
    return User.objects.get(pk=r.json()["id"]), urlsplit(r.json()["set_password_url"]).path


def _choose(path: str, password: str = NEW_PASSWORD, confirm: str | None = None, client: Client | None = None):
    """Open the link, follow it to the form (the token moves into the session) and send it."""
    client = client or Client()
    opened = client.get(path)
    if opened.status_code != 302:
        return opened
    form_path = opened["Location"]
    assert "set-password/" in form_path and path.rstrip("/").rsplit("/", 1)[1] not in form_path  # no token in the URL
    form = client.get(form_path)
    assert form.status_code == 200, form.content
    return client.post(form_path, {"new_password1": password, "new_password2": confirm or password})


def _login(username: str, password: str = NEW_PASSWORD):
    return ApiClient().post("auth/token", {"username": username, "password": password, "device_name": "iPad"})


def test_the_page_sets_a_password_and_the_user_can_log_in(town):
    user, path = _new_user(town)
    assert _login("hanako").status_code == 401  # no usable password yet
    client = Client()
    form = client.get(client.get(path)["Location"])
    page = form.content.decode()
    assert "新しいパスワード" in page and "hanako" in page and "山田 花子" in page
    done = _choose(path, client=client)
    assert done.status_code == 302, done.content
    assert Client().get(done["Location"]).content.decode().count("パスワードを設定しました") >= 1
    user.refresh_from_db()
    assert user.has_usable_password() and user.check_password(NEW_PASSWORD)
    r = _login("hanako")
    assert r.status_code == 201, r.content
    assert ApiClient(r.json()["token"]).get("me").json()["username"] == "hanako"
    event = AuditEvent.objects.filter(object_type="accounts.user", object_id=str(user.pk), basis="set-password link").get()
    assert (event.actor_id, event.action, event.detail) == (user.pk, "change", {"password": "set"})


def test_a_link_works_once(town):
    _user, path = _new_user(town)
    assert _choose(path).status_code == 302
    again = Client().get(path)
    assert again.status_code == 410
    assert "このリンクは使えません" in again.content.decode()
    assert _login("hanako").status_code == 201  # the first password stands


def test_issuing_a_link_voids_no_other_but_using_one_voids_all(town):
    user, first = _new_user(town)
    with time_machine.travel(timezone.localtime() + dt.timedelta(hours=1)):
        second = urlsplit(town.client("coordinator").post(f"users/{user.pk}/set-password-link").json()["url"]).path
        assert first != second
        assert Client().get(first).status_code == 302  # still valid after the second was issued
        assert _choose(second).status_code == 302
        assert Client().get(first).status_code == 410


def test_a_link_expires(town):
    _user, path = _new_user(town)
    timeout = dt.timedelta(seconds=django_settings.PASSWORD_RESET_TIMEOUT)
    with time_machine.travel(timezone.localtime() + timeout - dt.timedelta(minutes=1), tick=False):
        assert Client().get(path).status_code == 302
    with time_machine.travel(timezone.localtime() + timeout + dt.timedelta(minutes=1), tick=False):
        expired = Client().get(path)
        assert expired.status_code == 410
        assert "期限" in expired.content.decode()


def test_the_answer_says_when_the_link_expires(town):
    before = timezone.now()
    r = town.client("admin").post("users", {"username": "taro", "display_name": "太郎", "role": "supervisor"})
    expires = dt.datetime.fromisoformat(r.json()["set_password_expires_at"])
    timeout = dt.timedelta(seconds=django_settings.PASSWORD_RESET_TIMEOUT)
    assert before + timeout - dt.timedelta(seconds=2) <= expires <= timezone.now() + timeout


def test_the_projects_password_rules_apply(town):
    user, path = _new_user(town)
    client = Client()
    for weak in ("short1", "1234567890123", "hanako1234", "password123"):
        page = _choose(path, weak, client=client)
        assert page.status_code == 200, weak
        assert "errorlist" in page.content.decode()
    mismatch = _choose(path, NEW_PASSWORD, NEW_PASSWORD + "x", client=client)
    assert mismatch.status_code == 200
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert _choose(path, client=client).status_code == 302  # the link still works after refusals


def test_a_deactivated_users_link_is_void(town):
    user, path = _new_user(town)
    assert town.client("admin").patch(f"users/{user.pk}", {"is_active": False}).status_code == 200
    assert Client().get(path).status_code == 410
    assert town.client("admin").patch(f"users/{user.pk}", {"is_active": True}).status_code == 200
    assert Client().get(path).status_code == 302  # reactivated: the unused link is good again until it expires


def test_changing_the_email_voids_the_link(town):
    user, path = _new_user(town, email="old@example.jp")
    assert town.client("admin").patch(f"users/{user.pk}", {"email": "new@example.jp"}).status_code == 200
    assert Client().get(path).status_code == 410


@pytest.mark.parametrize("uid", ["", "!!", "MA", "OTIyMzM3MjAzNjg1NDc3NTgwOA", "LTE", "YWJj"])
def test_a_malformed_link_is_a_clear_page_not_an_error(town, uid):
    # "MA" = 0, the long one = 2**63 + 8 (beyond bigint), "LTE" = -1, "YWJj" = "abc"
    path = f"/account/set-password/{uid}/abc-123/" if uid else "/account/set-password/x/abc-123/"
    r = Client().get(path)
    assert r.status_code == 410
    assert "このリンクは使えません" in r.content.decode()


def test_another_users_token_does_not_fit(town):
    _user, path = _new_user(town)
    other = town.users["supervisor"]
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = f"/account/set-password/{urlsafe_base64_encode(force_bytes(other.pk))}/{token}/"
    assert Client().get(forged).status_code == 410


def test_a_django_password_reset_token_is_no_set_password_token(town):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    user = factories.user(town.municipality, "supervisor")
    token = default_token_generator.make_token(user)
    assert Client().get(f"/account/set-password/{urlsafe_base64_encode(force_bytes(user.pk))}/{token}/").status_code == 410
