"""The database enforces tenancy and least privilege (rls/, backend/tenancy.py, scripts/pg.sh).

Tried as an attacker with the application's own database login would: the audit log cannot be
changed, whatever session settings are tried; no tenant row is visible without a tenant scope; a
query that forgets its municipality filter gets its own municipality's rows and no other."""

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from accounts.models import DeviceToken, User
from audit.models import AuditEvent
from audit.services import record_access
from backend import tenancy
from neighborhoods.models import Household, Neighborhood, Resident
from outreach.models import CaseContact, Concern, ConcernTransition, OutreachCase
from rls.policies import AUDIT, CHILD, EXEMPT_TABLES, all_policies, unclassified
from visits.models import PlanningJob, VisitRecord

APP = "tsunagu_app"


def session_state(query: str = "SELECT current_user, current_setting('tsunagu.municipality_id', true)"):
    """What the test's connection is now, asked through Django (so the tenant settings are made
    right first, as before any query of the application)."""
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchone()


def app_login() -> psycopg.Connection:
    """A new connection to the test database exactly as the web server and the jobs make one."""
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"], dbname=db["NAME"], user=APP, connect_timeout=5)


# --- the roles -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_application_role_is_no_superuser_owns_nothing_and_cannot_bypass_policies():
    with app_login() as conn:
        superuser, bypass, createdb, createrole = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = current_user"
        ).fetchone()[0]
        member_of = conn.execute(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = current_user"
        ).fetchone()[0]
    assert (superuser, bypass, createdb, createrole) == (False, False, False, False)
    assert owned == 0
    assert member_of == 0  # it cannot SET ROLE to anything else


@pytest.mark.django_db
def test_the_application_role_cannot_change_the_schema_or_the_policies():
    with app_login() as conn:
        for statement in (
            "CREATE TABLE intruder (id int)",
            "ALTER TABLE neighborhoods_household DISABLE ROW LEVEL SECURITY",
            "DROP POLICY tsunagu_tenant ON neighborhoods_household",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()


@pytest.mark.django_db
@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET basis = 'changed'",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    "TRUNCATE audit_auditevent CASCADE",
])
@pytest.mark.parametrize("bypass", [
    None,
    "SET LOCAL pgtrigger.ignore = '{audit_append_only}'",
    "SET LOCAL pgtrigger.ignore = '{public.audit_auditevent:pgtrigger_audit_append_only_2a8c5}'",
    "SELECT set_config('tsunagu.platform', 'on', true)",
])
def test_the_audit_log_is_append_only_by_privilege(statement, bypass):
    with app_login() as conn:
        if bypass:
            conn.execute(bypass)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(statement)


@pytest.mark.django_db
def test_the_application_role_cannot_switch_replication_role_to_skip_triggers():
    with app_login() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET session_replication_role = replica")


@pytest.mark.django_db
def test_the_application_role_may_insert_audit_events_and_reads_them_only_in_scope():
    with app_login() as conn:
        conn.execute(
            "INSERT INTO audit_auditevent (at, municipality_id, actor_username, actor_role, action, object_type, "
            "object_id, basis, detail) VALUES (now(), NULL, 'x', '', 'read', 'rls-test', '1', 'b', '{}')"
        )
        count = "SELECT count(*) FROM audit_auditevent WHERE object_type = 'rls-test'"
        unscoped = conn.execute(count).fetchone()[0]
        conn.execute("SELECT set_config('tsunagu.platform', 'on', true)")
        platform = conn.execute(count).fetchone()[0]
        conn.rollback()
    assert (unscoped, platform) == (0, 1)


# --- the policies ----------------------------------------------------------------------------


def test_every_table_of_every_model_has_a_tenant_policy_or_a_stated_exemption():
    assert unclassified() == []
    assert all(reason.strip() for reason in EXEMPT_TABLES.values())


@pytest.mark.django_db
def test_every_classified_table_has_row_level_security_and_its_policy_in_the_database():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "       (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname AND p.schemaname = 'public') "
            "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
        state = {name: (enabled, forced, policies) for name, enabled, forced, policies in cursor.fetchall()}
    for policy in all_policies():
        assert state[policy.table][0], f"{policy.table}: row-level security is not enabled"
        assert state[policy.table][2] == 1, f"{policy.table}: expected its one policy"


@pytest.mark.django_db
def test_every_table_with_a_municipality_column_is_under_a_policy():
    """Found from the database itself, so a table made by raw SQL would be caught too."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'municipality_id' AND NOT a.attisdropped "
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity"
        )
        unprotected = [row[0] for row in cursor.fetchall()]
    assert unprotected == []


@pytest.mark.django_db
def test_the_bounding_box_operator_may_run_before_the_policies():
    """PostGIS's && is LEAKPROOF (scripts/pg.sh), or no spatial index serves a tile or a bbox filter
    under row-level security (a municipality-wide scan instead). ALTER EXTENSION UPDATE resets it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT proleakproof FROM pg_proc WHERE oid = 'geometry_overlaps(geometry,geometry)'::regprocedure")
        assert cursor.fetchone()[0] is True


def test_children_point_at_protected_parents():
    tables = {p.table: p for p in all_policies()}
    for policy in all_policies():
        if policy.kind == CHILD:
            assert policy.parent_table in tables, f"{policy.table}'s parent {policy.parent_table} has no policy"
    assert any(p.kind == AUDIT for p in all_policies())


# --- scopes ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_tenant_no_tenant_row_is_visible(town, other_town):
    town.with_outreach()
    assert Household.objects.count() == 2  # the test's own connection is the owner's
    with tenancy.scope(None):
        assert session_state("SELECT current_user")[0] == APP
        for model in (Household, Resident, Concern, OutreachCase, CaseContact, ConcernTransition, User,
                      Neighborhood, DeviceToken, AuditEvent, VisitRecord, PlanningJob):
            assert model.objects.count() == 0, model


@pytest.mark.django_db
def test_a_query_that_forgets_its_tenant_filter_gets_no_row_of_another_municipality(town, other_town):
    town.with_outreach()
    other_town.with_outreach()
    assert Household.objects.count() == 2
    with tenancy.scope(town.municipality.id):
        assert set(Household.objects.values_list("id", flat=True)) == {town.household.id}
        assert set(Concern.objects.values_list("municipality_id", flat=True)) == {town.municipality.id}
        assert set(OutreachCase.objects.values_list("id", flat=True)) == {town.case.id}
        assert not CaseContact.objects.filter(case=other_town.case).exists()
        assert not ConcernTransition.objects.filter(concern=other_town.concern).exists()
        assert set(User.objects.values_list("municipality_id", flat=True)) == {town.municipality.id}
        assert not DeviceToken.objects.filter(user__municipality=other_town.municipality).exists()
        # A join does not reach across either.
        assert not Household.objects.filter(neighborhood=other_town.neighborhood).exists()
        assert Resident.objects.filter(household__municipality=other_town.municipality).count() == 0


@pytest.mark.django_db
def test_a_write_into_another_municipality_is_refused_inside_a_scope(town, other_town):
    with tenancy.scope(town.municipality.id):
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            Household.objects.create(
                municipality=other_town.municipality, external_id="x-1", address="どこか", location=None,
            )
        # Updating the other town's rows changes nothing: they are not there.
        assert Household.objects.filter(pk=other_town.household.pk).update(address="変更") == 0
    other_town.household.refresh_from_db()
    assert other_town.household.address != "変更"


@pytest.mark.django_db
def test_the_platform_scope_sees_the_structure_of_every_municipality_and_no_people(town, other_town):
    with tenancy.platform_scope():
        assert User.objects.filter(municipality__in=[town.municipality, other_town.municipality]).count() == len(
            town.users) + len(other_town.users)
        assert Neighborhood.objects.count() == 2
        assert Household.objects.count() == 0
        assert Resident.objects.count() == 0
        assert Concern.objects.count() == 0


@pytest.mark.django_db
def test_scopes_nest_and_restore_the_role_and_settings(town, other_town):
    state = session_state
    login = state()[0]
    with tenancy.scope(town.municipality.id):
        assert state() == (APP, str(town.municipality.id))
        with tenancy.scope(other_town.municipality.id):
            assert state() == (APP, str(other_town.municipality.id))
        assert state() == (APP, str(town.municipality.id))
    assert state() == (login, "")


@pytest.mark.django_db
def test_settings_undone_by_a_rolled_back_savepoint_are_made_again(town, other_town):
    class Undo(Exception):
        pass

    with tenancy.scope(town.municipality.id):
        with pytest.raises(Undo), transaction.atomic():
            assert Household.objects.count() == 1  # the settings are made inside the savepoint …
            raise Undo
        # … which took them with it: the next query makes them again instead of running as the owner.
        assert session_state() == (APP, str(town.municipality.id))
        assert Household.objects.count() == 1


def test_a_scope_is_a_municipality_id():
    with pytest.raises(TypeError):
        tenancy.Scope(municipality_id="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tenancy.Scope(municipality_id=True)


# --- requests --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_request_leaves_no_tenant_or_role_on_the_connection(town):
    login = session_state("SELECT current_user")[0]
    response = town.client("coordinator").get("households")
    assert response.status_code == 200
    after = session_state(
        "SELECT current_user, current_setting('tsunagu.municipality_id', true), "
        "       current_setting('tsunagu.platform', true)"
    )
    assert after == (login, "", "")
    assert tenancy.current() == tenancy.NOTHING


@pytest.mark.django_db
def test_requests_run_as_the_application_role_in_their_users_scope(town, other_town):
    seen = []

    def spy(execute, sql, params, many, context):
        if "neighborhoods_household" in sql:
            seen.append(context["connection"].connection.execute(
                "SELECT current_user, current_setting('tsunagu.municipality_id', true)"
            ).fetchone())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        response = other_town.client("coordinator").get("households")
    assert response.status_code == 200
    assert seen and set(seen) == {(APP, str(other_town.municipality.id))}


@pytest.mark.django_db
@pytest.mark.parametrize("forged", [
    {"headers": {"X-Tsunagu-Municipality": "{other}"}},
    {"query": {"municipality_id": "{other}"}},
    {"query": {"municipality": "{other}"}},
    {"headers": {"X-Forwarded-User": "{other_user}"}},
])
def test_a_forged_tenant_from_a_client_changes_nothing(town, other_town, forged):
    values = {"other": str(other_town.municipality.id), "other_user": other_town.users["coordinator"].username}
    kwargs = {key: {k: v.format(**values) for k, v in part.items()} for key, part in forged.items()}
    response = town.client("coordinator").get("households", **kwargs)
    if response.status_code == 200:
        ids = {item["id"] for item in response.json()["items"]}
        assert str(other_town.household.id) not in {str(i) for i in ids}
    else:
        assert response.status_code == 422  # an unknown parameter may be refused, never obeyed


@pytest.mark.django_db
def test_a_platform_operator_session_gets_no_api_data(town, client):
    operator = User.objects.create_superuser("operator-rls", "op@example.jp", "long-enough-password-1")
    client.force_login(operator)
    response = client.get("/api/v1/households")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_municipality"


# --- jobs ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("tenant", [None, 0, -1, "1", True, 10**9])
def test_a_job_without_a_real_tenant_is_refused_and_touches_nothing(town, tenant):
    from visits.tasks import run_planning_job_task

    job = PlanningJob.objects.create(municipality=town.municipality, campaign=town.campaign, kind="generate")
    with pytest.raises(tenancy.TenantRequired):
        run_planning_job_task(str(job.pk), tenant)
    job.refresh_from_db()
    assert job.status == PlanningJob.Status.QUEUED


@pytest.mark.django_db
def test_a_job_in_one_municipality_cannot_reach_anothers_rows(town, other_town):
    from visits.tasks import run_planning_job_task

    job = PlanningJob.objects.create(municipality=town.municipality, campaign=town.campaign, kind="generate")
    assert run_planning_job_task(str(job.pk), other_town.municipality.id) == {"skipped": True}  # not found
    job.refresh_from_db()
    assert job.status == PlanningJob.Status.QUEUED


@pytest.mark.django_db
def test_audit_events_are_written_in_the_actors_scope(town, other_town):
    coordinator = town.users["coordinator"]
    with tenancy.scope(town.municipality.id):
        event = record_access(actor=coordinator, object_type="t", object_id=1, basis="test")
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            record_access(actor=other_town.users["coordinator"], object_type="t", object_id=1, basis="test")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_createsuperuser_makes_a_platform_operator_as_the_application_role(monkeypatch):
    from django.core.management import call_command

    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "long-operator-pass-1")
    with tenancy.scope(None):  # as in production: the application's role, no tenant
        call_command("createsuperuser", interactive=False, username="op-rls", email="op@example.jp", verbosity=0)
    operator = User.objects.get(username="op-rls")
    assert operator.is_superuser and operator.municipality_id is None


@pytest.mark.django_db
def test_migrate_runs_as_the_owner_by_default():
    from rls.management.commands.migrate import Command

    parser = Command().create_parser("manage.py", "migrate")
    assert parser.parse_args([]).database == "owner"
