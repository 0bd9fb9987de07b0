"""Role x endpoint x other municipality's object: always 404, nothing changed.
The rows live in tests/access_matrix.py and grow with every feature."""

import pytest

from tests.access_matrix import ALL_ROLES, ENDPOINTS


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
    return users, tokens, households, residents, campaigns, visits, days_off, concerns, cases, counts
