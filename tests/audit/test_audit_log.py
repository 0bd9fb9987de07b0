import pytest
from django.db import DatabaseError, connection, transaction

from accounts.models import User
from audit.models import AuditEvent
from audit.services import record_access


@pytest.fixture
def event(town):
    return record_access(
        actor=town.users["coordinator"], object_type="neighborhoods.resident", object_id=42, basis="role:coordinator"
    )


def test_a_read_is_recorded_with_who_what_and_why(event, town):
    assert event.actor == town.users["coordinator"]
    assert event.municipality == town.municipality
    assert (event.object_type, event.object_id, event.basis) == ("neighborhoods.resident", "42", "role:coordinator")
    assert event.actor_role == "coordinator"


def test_the_database_refuses_to_update_an_audit_row(event):
    with pytest.raises(DatabaseError, match="audit_append_only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(basis="tampered")
    event.refresh_from_db()
    assert event.basis == "role:coordinator"


def test_the_database_refuses_to_delete_an_audit_row_even_with_raw_sql(event):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_coordinators_read_their_own_municipalitys_trail_only(event, town, other_town):
    record_access(actor=other_town.users["coordinator"], object_type="x.y", object_id=1, basis="role:coordinator")
    r = town.client("coordinator").get("audit/events")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [e["id"] for e in items] == [event.id]
    assert town.client("outreach_worker").get("audit/events").status_code == 403
    assert town.client("supervisor").get("audit/events").status_code == 403


def test_user_changes_leave_a_trigger_written_history_even_for_raw_sql(town):
    user = town.users["supervisor"]
    user.role = "coordinator"
    user.save(update_fields=["role"])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET is_active = false WHERE id = %s", [user.pk])
    history = list(User.pgh_event_model.objects.filter(pgh_obj_id=user.pk).order_by("pgh_id"))
    assert [h.pgh_label for h in history] == ["insert", "update", "update"]
    assert history[1].role == "coordinator"
    assert history[2].is_active is False
    assert not hasattr(history[0], "password")


def test_an_audited_read_records_the_client_behind_a_trusted_proxy_only(town, settings):
    """The address in an audit row is the one the login limits count: X-Forwarded-For is believed
    only from a configured proxy."""
    settings.TSUNAGU_TRUSTED_PROXIES = ["10.9.0.0/16"]
    client = town.client("coordinator")
    path = f"households/{town.household.id}"
    via_proxy = client.get(path, REMOTE_ADDR="10.9.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7")
    forged = client.get(path, REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="203.0.113.8")
    assert via_proxy.status_code == forged.status_code == 200
    ips = list(
        AuditEvent.objects.filter(object_id=str(town.household.id), actor=town.users["coordinator"])
        .order_by("id")
        .values_list("ip", flat=True)
    )
    assert ips == ["203.0.113.7", "198.51.100.9"]
