"""The Django admin is the platform operator's tool: municipal accounts never get in, and no page
shows or writes people data around the API's access rules and services."""

import pytest
from django.contrib import admin
from django.db import IntegrityError, connection, transaction
from django.test import Client

from accounts.models import DeviceToken, User
from audit.models import AuditEvent
from tests import factories

# Models that hold people data (or writes to it): none may be in the admin.
PEOPLE_DATA = {
    "neighborhoods.household", "neighborhoods.resident",
    "outreach.meeting", "outreach.watcharrangement", "outreach.watchcheckin", "outreach.concern",
    "outreach.concerntransition", "outreach.outreachcase", "outreach.casecontact", "outreach.casemeeting",
    "outreach.supportplan",
    "visits.hearing", "visits.campaignhousehold", "visits.scheduledvisit", "visits.visitrecord",
    "visits.photo", "visits.editconflict", "visits.syncoperation", "visits.deviceholding", "visits.pullpage",
}
# What the operator's admin shows; a new registration is a decision to review, so it fails here.
ALLOWED = {
    "auth.group", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog",
    "django_q.schedule", "django_q.success", "django_q.failure", "django_q.ormq",
    "neighborhoods.municipality", "neighborhoods.neighborhood", "visits.partnerorganization",
    "accounts.user", "accounts.devicetoken", "audit.auditevent", "maps.coveragerefresh",
}
MUNICIPAL_ROLES = ["coordinator", "admin", "supervisor"]


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_superuser("platform-op", "op@example.jp", factories.PASSWORD)


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def _without_staff_constraint() -> None:
    """Rows from before the constraint existed: dropped inside the test's transaction only."""
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the town's deferred checks, or no ALTER TABLE
        cur.execute("ALTER TABLE accounts_user DROP CONSTRAINT user_municipal_not_staff")


@pytest.mark.parametrize("flags", [{"is_staff": True}, {"is_superuser": True}, {"is_staff": True, "is_superuser": True}])
def test_database_refuses_staff_flags_on_a_municipal_user(town, flags):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=town.users["coordinator"].pk).update(**flags)


@pytest.mark.parametrize("role", MUNICIPAL_ROLES)
def test_municipal_user_with_staff_flags_is_refused_by_the_admin(town, role):
    _without_staff_constraint()
    user = town.users[role]
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)

    client = Client()
    r = client.post("/admin/login/", {"username": user.username, "password": factories.PASSWORD, "next": "/admin/"})
    assert r.status_code == 200  # the form again, with its error
    assert r.context["form"].errors
    assert "_auth_user_id" not in client.session

    client.force_login(user)  # e.g. a session from the map page's login
    for path in ("/admin/", "/admin/accounts/user/", "/admin/neighborhoods/municipality/"):
        r = client.get(path)
        assert r.status_code == 302, path
        assert r["Location"].startswith("/admin/login/"), path


def test_superuser_flag_does_not_make_a_municipal_user_an_operator_even_in_memory(town, rf):
    user = town.users["admin"]
    user.is_staff = user.is_superuser = True  # never saved: the database refuses it
    request = rf.get("/admin/")
    request.user = user
    assert admin.site.has_permission(request) is False


def test_inactive_operator_is_refused(operator):
    User.objects.filter(pk=operator.pk).update(is_active=False)
    client = Client()
    client.force_login(operator)
    assert client.get("/admin/").status_code == 302


def test_platform_operator_logs_in_and_lists_users_and_municipalities(town, operator):
    client = Client()
    r = client.post("/admin/login/", {"username": "platform-op", "password": factories.PASSWORD, "next": "/admin/"})
    assert r.status_code == 302, r.content
    assert r["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200

    users = client.get("/admin/accounts/user/")
    assert users.status_code == 200
    assert town.users["coordinator"].username in users.content.decode()
    towns = client.get("/admin/neighborhoods/municipality/")
    assert towns.status_code == 200
    assert town.municipality.name in towns.content.decode()


def test_admin_registry_has_no_people_data():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert not registered & PEOPLE_DATA
    assert registered <= ALLOWED, registered - ALLOWED
    inline_models = {
        inline.model._meta.label_lower for model_admin in admin.site._registry.values() for inline in model_admin.inlines
    }
    assert not inline_models & PEOPLE_DATA


def test_people_data_urls_are_404_for_the_operator(town, operator_client):
    town.with_outreach()
    photo = town.with_photo()
    objects = {
        "neighborhoods/household": town.household.pk, "neighborhoods/resident": town.resident.pk,
        "outreach/concern": town.concern.pk, "outreach/outreachcase": town.case.pk,
        "outreach/meeting": town.meeting.pk, "outreach/watcharrangement": town.watch.pk,
        "outreach/casecontact": 1, "visits/visitrecord": town.visit_record.pk, "visits/photo": photo.pk,
        "visits/hearing": town.hearing.pk, "visits/scheduledvisit": town.visit.pk,
    }
    for path, pk in objects.items():
        assert operator_client.get(f"/admin/{path}/").status_code == 404, path
        assert operator_client.get(f"/admin/{path}/{pk}/change/").status_code == 404, path
    # The old CaseContact inline: posting the case's change form writes nothing.
    due = town.case.next_contact_due
    r = operator_client.post(
        f"/admin/outreach/outreachcase/{town.case.pk}/change/",
        {"contacts-TOTAL_FORMS": "1", "contacts-INITIAL_FORMS": "0", "contacts-0-summary": "admin"},
    )
    assert r.status_code == 404
    town.case.refresh_from_db()
    assert town.case.next_contact_due == due
    assert not town.case.contacts.exists()


def test_operator_reading_a_user_is_audited(town, operator, operator_client):
    user = town.users["commissioner"]
    r = operator_client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert r.status_code == 200
    event = AuditEvent.objects.get(object_type="accounts.user", object_id=str(user.pk))
    assert event.actor_id == operator.pk
    assert event.basis == "platform_admin"
    assert event.action == AuditEvent.Action.READ


def test_neighborhood_boundaries_are_read_only_in_the_admin(town, operator_client):
    hood = town.neighborhood
    r = operator_client.post(f"/admin/neighborhoods/neighborhood/{hood.pk}/change/", {"name": "変更", "code": hood.code})
    assert r.status_code == 403
    hood.refresh_from_db()
    assert hood.name != "変更"


def test_device_tokens_are_revoked_through_the_service(town, operator, operator_client):
    token = DeviceToken.objects.filter(user=town.users["outreach_worker"]).get()
    r = operator_client.post(
        "/admin/accounts/devicetoken/", {"action": "revoke", "_selected_action": [str(token.pk)]}
    )
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.revoked_by_id == operator.pk


def test_operator_cannot_make_a_municipal_user_staff(town, operator_client):
    user = town.users["coordinator"]
    page = operator_client.get(f"/admin/accounts/user/{user.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update({"is_staff": "on", "date_joined_0": "2025-01-01", "date_joined_1": "00:00:00"})
    data.pop("date_joined", None)
    data["neighborhoods"] = []
    r = operator_client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert r.status_code == 200  # the form again, with the constraint's message
    assert "cannot be staff or superuser" in r.content.decode()
    user.refresh_from_db()
    assert user.is_staff is False
