"""The set-password page (/account/set-password/<uidb64>/<token>/): where a new user, or one who
forgot their password, chooses one through the one-time link a manager or the import gave them
(accounts.links). Django's own PasswordResetConfirmView does the work: it checks the token, moves it
from the URL into the session (so it never leaks in a Referer), and sets the password with the
project's validators (SetPasswordForm). Row-level security: the visitor is nobody yet, so the
link's user is read inside the scope of the municipality the database says they belong to."""

from typing import Any

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import PasswordResetConfirmView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils.http import urlsafe_base64_decode

from accounts.links import set_password_tokens
from accounts.models import User
from accounts.services import client_ip
from audit.models import AuditEvent
from audit.services import record_access
from backend import tenancy

MAX_USER_ID = 2**63 - 1


class ChoosePasswordForm(SetPasswordForm):
    """Django's form (the project's password validators), with Japanese labels of our own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = "新しいパスワード"
        self.fields["new_password1"].help_text = "10文字以上。氏名やユーザー名に似たもの、よく使われるもの、数字だけのものは使えません。"
        self.fields["new_password2"].label = "新しいパスワード（確認）"
        self.fields["new_password2"].help_text = ""
        for name in ("new_password1", "new_password2"):
            self.fields[name].widget = forms.PasswordInput(attrs={"autocomplete": "new-password"})


class SetPasswordView(PasswordResetConfirmView):
    form_class = ChoosePasswordForm
    template_name = "accounts/set_password.html"
    token_generator = set_password_tokens
    success_url = reverse_lazy("accounts:set_password_done")
    title = "パスワードの設定"

    def get_user(self, uidb64: str) -> User | None:
        try:
            pk = int(urlsafe_base64_decode(uidb64).decode())
        except (TypeError, ValueError, UnicodeDecodeError):
            return None
        if not 0 < pk <= MAX_USER_ID:
            return None
        found = tenancy.lookup_scope("user", pk)  # active users only
        if found.municipality_id is None:
            return None  # unknown, deactivated, or a platform operator (no links for them)
        tenancy.switch(found)
        return User.objects.filter(pk=pk, municipality_id=found.municipality_id, is_active=True).first()

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        user = form.user
        record_access(actor=user, object_type=user._meta.label_lower, object_id=user.pk, basis="set-password link",
                      action=AuditEvent.Action.CHANGE, ip=client_ip(self.request), detail={"password": "set"})
        return response

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        if not self.validlink:
            kwargs.setdefault("status", 410)  # used, expired or never valid: gone either way
        return super().render_to_response(context, **kwargs)


def set_password_done(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/set_password_done.html", {"title": "パスワードを設定しました"})
