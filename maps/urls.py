from django.contrib.auth.views import LogoutView
from django.urls import path

from maps import views

app_name = "maps"

urlpatterns = [
    path("", views.map_page, name="page"),
    path("login/", views.MapLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="maps:login"), name="logout"),
]
