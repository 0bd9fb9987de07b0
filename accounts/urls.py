"""Pages of accounts outside the API: the set-password page of the one-time links. Mounted at
/account/ (backend/urls.py)."""

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("set-password/done/", views.set_password_done, name="set_password_done"),
    path("set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set_password"),
]
