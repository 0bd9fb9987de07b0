"""One-time set-password links (パスワード設定用リンク).

Users are created without a usable password; a manager (or the import command) hands them a link to
`/account/set-password/<uidb64>/<token>/`, where they choose one. The token is Django's password-
reset token with a salt of its own, so it cannot be used as any other kind of token:

- single use: the hash covers the password (and last login), so once a password is set every link
  issued before it stops working; issuing a new link invalidates nothing (it changes no row);
- it expires after PASSWORD_RESET_TIMEOUT seconds (Django's setting; 72 hours unless configured);
- it covers `is_active` and the email too: deactivating a user, or changing their email, voids
  their links.

The link's base is TSUNAGU_PUBLIC_URL (the address people open in their browser)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class SetPasswordTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "tsunagu.accounts.links.SetPasswordTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


set_password_tokens = SetPasswordTokenGenerator()


@dataclass(frozen=True)
class SetPasswordLink:
    url: str
    expires_at: datetime


def public_url() -> str:
    return str(getattr(settings, "TSUNAGU_PUBLIC_URL", DEFAULT_PUBLIC_URL)).rstrip("/")


def make_link(user: User) -> SetPasswordLink:
    """A new link for `user`. Writes nothing: the token is derived from the user's row."""
    issued = timezone.now().replace(microsecond=0)
    token = set_password_tokens.make_token(user)
    path = reverse("accounts:set_password", kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": token})
    return SetPasswordLink(url=public_url() + path,
                           expires_at=issued + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT))
