"""Role x endpoint x other municipality's object: always 404, nothing changed.
The rows live in tests/access_matrix.py and grow with every feature."""

import pytest

from tests.access_matrix import ALL_ROLES, BODY_ROWS, ENDPOINTS, NOT_IN_MATRIX, SUPERVISOR, SYNC_FOREIGN_OPS


def _call(client, endpoint, town, prepared=None):
    path, body = prepared or _prepare(endpoint, town)
    return client.request(endpoint.method, path, body)


def _prepare(endpoint, town):
    """The path and body, built first: building them may create the objects they name."""
    path = endpoint.path(town)
    return path, endpoint.body(town) if endpoint.body else None


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", sorted(ALL_ROLES))
def test_other_municipalitys_object_is_404(town, other_town, role, endpoint):
    prepared = _prepare(endpoint, other_town)
    before = _snapshot(other_town)
    r = _call(town.client(role), endpoint, other_town, prepared)
    if role in endpoint.roles:
        assert r.status_code == 404, (role, endpoint.name, r.status_code, r.content)
    else:
        assert r.status_code in (403, 404), (role, endpoint.name, r.status_code, r.content)
    assert r.json()["error"]["code"] in ("not_found", "forbidden")
    assert _snapshot(other_town) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", sorted(ALL_ROLES))
def test_own_municipalitys_object_follows_the_role(town, role, endpoint):
    r = _call(town.client(role), endpoint, town)
    if role in endpoint.roles:
        assert r.status_code == endpoint.ok, (role, endpoint.name, r.status_code, r.content)
    else:
        assert r.status_code in (403, 404), (role, endpoint.name, r.status_code, r.content)


def _snapshot(town) -> tuple:
    """What an endpoint could change in the other town: its users' state and tokens."""
    from accounts.models import DeviceToken, User
    from neighborhoods.models import Household, Resident

    households = tuple(
        Household.objects.filter(municipality=town.municipality).order_by("pk").values_list("pk", "version", "status")
    )
    residents = tuple(Resident.objects.filter(municipality=town.municipality).order_by("pk").values_list("pk", "version"))
    users = tuple(User.objects.filter(municipality=town.municipality).order_by("pk").values_list("pk", "role", "is_active"))
    tokens = tuple(
        DeviceToken.objects.filter(user__municipality=town.municipality).order_by("pk").values_list("pk", "revoked_at")
    )
    from visits.models import Campaign, ScheduledVisit, WorkerDayOff

    campaigns = tuple(Campaign.objects.filter(municipality=town.municipality).order_by("pk").values_list("pk", "max_attempts", "status"))
    visits = tuple(ScheduledVisit.objects.filter(municipality=town.municipality).order_by("pk").values_list("pk", "worker_id", "status", "version"))
    days_off = WorkerDayOff.objects.filter(worker__municipality=town.municipality).count()
    from outreach.models import CaseContact, CaseMeeting, Concern, OutreachCase, WatchCheckIn

    concerns = tuple(Concern.objects.filter(municipality=town.municipality).order_by("pk").values_list("pk", "status", "version", "household_id"))
    cases = tuple(OutreachCase.objects.filter(municipality=town.municipality).order_by("pk").values_list("pk", "version", "status", "consent"))
    counts = (
        CaseContact.objects.filter(case__municipality=town.municipality).count(),
        CaseMeeting.objects.filter(case__municipality=town.municipality).count(),
        WatchCheckIn.objects.filter(arrangement__municipality=town.municipality).count(),
    )
    return users, tokens, households, residents, campaigns, visits, days_off, concerns, cases, counts, _more(town)


def _more(town) -> tuple:
    """The rows a write naming objects in its body could add or change."""
    from outreach.models import Meeting, SupportPlan, WatchArrangement
    from visits.models import (
        Allocation,
        CampaignNeighborhood,
        Device,
        Hearing,
        Photo,
        SyncOperation,
        VisitRecord,
    )

    muni = town.municipality
    return (
        Meeting.objects.filter(municipality=muni).count(),
        WatchArrangement.objects.filter(municipality=muni).count(),
        SupportPlan.objects.filter(case__municipality=muni).count(),
        Hearing.objects.filter(municipality=muni).count(),
        tuple(Allocation.objects.filter(municipality=muni).order_by("pk").values_list("pk", "neighborhood_id",
                                                                                      "partner_organization_id")),
        tuple(CampaignNeighborhood.objects.filter(campaign__municipality=muni).order_by("pk")
              .values_list("neighborhood_id", "position")),
        Device.objects.filter(municipality=muni).count(),
        Photo.objects.filter(municipality=muni).count(),
        SyncOperation.objects.filter(municipality=muni).count(),
        VisitRecord.objects.filter(municipality=muni).count(),
    )


# --- writes naming objects in their body ------------------------------------------------------------


@pytest.mark.parametrize("row", BODY_ROWS, ids=lambda r: r.name)
@pytest.mark.parametrize("role", sorted(ALL_ROLES))
def test_a_body_with_own_objects_follows_the_role(town, role, row):
    path, body = row.path(town), row.body(town)
    r = town.client(role).request(row.method, path, body)
    if role in row.roles:
        assert r.status_code == row.ok, (role, row.name, r.status_code, r.content)
    else:
        assert r.status_code in (403, 404), (role, row.name, r.status_code, r.content)
        assert r.json()["error"]["code"] in ("not_found", "forbidden")


FOREIGN = [(row, variant) for row in BODY_ROWS for variant in row.foreign]


@pytest.mark.parametrize(("row", "variant"), FOREIGN, ids=[f"{r.name}: {v}" for r, v in FOREIGN])
def test_a_body_naming_another_municipalitys_object_fails_and_changes_nothing(town, other_town, row, variant):
    for role in sorted(row.roles):
        path, body = row.path(town), row.foreign[variant](town, other_town)
        before = (_snapshot(town), _snapshot(other_town))
        r = town.client(role).request(row.method, path, body)
        assert r.status_code in (404, 422), (role, row.name, variant, r.status_code, r.content)
        assert set(r.json()["error"]) == {"code", "message", "details"}
        assert (_snapshot(town), _snapshot(other_town)) == before, (role, row.name, variant)


def test_every_write_operation_has_a_matrix_row(town):
    """A new write endpoint fails here until it has a row (or says where it is covered)."""
    import re

    from django.urls import resolve

    from api.api import api

    published = {
        (method.upper(), path)
        for path, operations in api.get_openapi_schema()["paths"].items()
        for method in operations if method.upper() in ("POST", "PUT", "PATCH", "DELETE")
    }

    def template(path: str) -> str:
        route = resolve("/api/v1/" + path.split("?")[0]).route
        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)

    rows = {(e.method, template(e.path(town))) for e in ENDPOINTS if e.method != "GET"}
    rows |= {(b.method, template(b.path(town))) for b in BODY_ROWS}
    assert published - rows - set(NOT_IN_MATRIX) == set()
    assert set(NOT_IN_MATRIX) <= published  # no stale exemptions


def test_no_write_lets_the_supervisor_in():
    writes = [e for e in ENDPOINTS if e.method != "GET"] + BODY_ROWS
    assert [w.name for w in writes if SUPERVISOR in w.roles] == []


# --- sync push kinds ------------------------------------------------------------------------------------

SYNC_CASES = [(kind, variant) for kind, variants in SYNC_FOREIGN_OPS.items() for variant in variants]


def test_every_push_kind_has_rows():
    from visits.sync import engine as sync

    assert set(SYNC_FOREIGN_OPS) == set(sync.APPLIERS)


@pytest.mark.parametrize(("kind", "variant"), SYNC_CASES, ids=[f"{k}: {v}" for k, v in SYNC_CASES])
def test_a_push_naming_another_municipalitys_object_is_rejected(town, other_town, kind, variant):
    import uuid

    client = town.client("coordinator")
    device_id = str(uuid.uuid4())
    assert client.post("sync/devices", {"device_id": device_id}).status_code == 201
    op = {"op_id": str(uuid.uuid4()), **SYNC_FOREIGN_OPS[kind][variant](town, other_town)}
    before = (_snapshot(town), _snapshot(other_town))
    r = client.post("sync/push", {"device_id": device_id, "ops": [op]})
    assert r.status_code == 200, r.content
    [result] = r.json()["results"]
    assert result["status"] == "rejected", result
    assert (_snapshot(town), _snapshot(other_town)) == before
