"""The project's URLs with the account pages mounted as backend/urls.py will mount them
(`path("account/", include("accounts.urls"))`), for the tests of set-password links."""

from django.urls import include, path

from backend.urls import handler400, handler403, handler404, handler500
from backend.urls import urlpatterns as project_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [path("account/", include("accounts.urls")), *project_urlpatterns]
