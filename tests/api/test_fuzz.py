"""Every operation of the published OpenAPI document, fuzzed in-process (WSGI) by schemathesis with
all of its checks: no 5xx, documented statuses, content types and headers, responses that match
their schemas, invalid input refused and valid input accepted.

Each operation runs as a coordinator and as an outreach worker, with path ids drawn half the time
from a real town (so handlers get past their 404) and half the time at random. Runs are
derandomized; TSUNAGU_FUZZ_EXAMPLES (examples per operation, mode and role) and TSUNAGU_FUZZ_SEED
(a fixed seed instead of the derandomized one) let a developer explore further."""

import json
import os
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from ninja.renderers import JSONRenderer
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from api.api import api
from tests.conftest import Town, build_town

EXAMPLES = int(os.environ.get("TSUNAGU_FUZZ_EXAMPLES", "12"))
SEED = os.environ.get("TSUNAGU_FUZZ_SEED")
ROLES = ["coordinator", "outreach_worker"]


def _published() -> dict[str, Any]:
    """The document exactly as /api/v1/openapi.json serves it (string status keys and all)."""
    return json.loads(JSONRenderer().render(None, api.get_openapi_schema(), response_status=200))


# Positive data may meet 401/403 (the role may not do it), 404 (a random id names nothing the caller
# may see) and 409 (a valid body can still conflict with the state, e.g. a concern transition its
# current status does not allow): schemathesis' defaults, kept explicit here.
POSITIVE_OK = ["2xx", "304", "401", "403", "404", "409"]

# Operations whose rules go beyond what JSON Schema can say, so that schema-valid input can rightly
# be refused with 422. Everything else must accept whatever its schema admits.
BEYOND_SCHEMA = {
    # dates relative to today: planned dates within the fiscal window, facts no later than today
    "POST /api/v1/campaigns": "planned dates within the fiscal-year window",
    "PATCH /api/v1/campaigns/{campaign_id}": "planned dates within the fiscal-year window",
    "POST /api/v1/workers/{worker_id}/days-off": "planned dates within the fiscal-year window",
    "POST /api/v1/meetings": "a meeting that has happened",
    "POST /api/v1/watches/{watch_id}/check-ins": "a check-in that has happened",
    "POST /api/v1/cases/{case_id}/contacts": "a contact that has happened",
    "POST /api/v1/watches/{watch_id}/check-ins/{check_in_id}/corrections": "a check-in that has happened, or a retraction alone",
    "POST /api/v1/cases/{case_id}/contacts/{contact_id}/corrections": "a contact that has happened, or a retraction alone",
    "POST /api/v1/cases/{case_id}/consent": "consent given on a past date",
    "POST /api/v1/cases/{case_id}/meetings": "a meeting that has happened",
    "POST /api/v1/cases/{case_id}/close": "closed on a past date",
    # one field constrains another
    "POST /api/v1/concerns": "a household, a resident or a pin",
    "GET /api/v1/me/schedule": "date_to after date_from, at most 92 days",
    "GET /api/v1/workers/{worker_id}/schedule": "date_to after date_from, at most 92 days",
    "GET /api/v1/partners/{partner_id}/schedule": "date_to after date_from, at most 92 days",
    "POST /api/v1/campaigns/{campaign_id}/hearings": "a hearing that has happened",
    "POST /api/v1/campaigns/{campaign_id}/plan": "planned dates within the fiscal-year window",
    "POST /api/v1/campaigns/{campaign_id}/replan": "planned dates within the fiscal-year window",
    "POST /api/v1/households/{household_id}/residents": "a birth year no later than this year",
    "PATCH /api/v1/residents/{resident_id}": "a birth year no later than this year",
    "GET /api/v1/audit/events": "since: a time that has happened",
    "POST /api/v1/exports": "the kind decides which of fiscal_year / campaign it needs; a 年度 up to the next one",
    "GET /api/v1/reports/corporations": "exactly one of campaign and fiscal_year; a 年度 no later than the next",
    "GET /api/v1/case-meetings": "from and to within 2000 … the next 年度's end, to not before from",
    "GET /api/v1/reports/fiscal-years/{year}": "a 年度 no later than the next one",
    # the role decides which other fields a user needs
    "POST /api/v1/users": "the role decides whether a corporation or 自治会 is needed; ids of this municipality; an email address",
    "PATCH /api/v1/users/{user_id}": "the role decides whether a corporation or 自治会 is needed; ids of this municipality; an email address",
    # where things are
    "POST /api/v1/households": "a location inside the municipality (outside_municipality)",
    "PATCH /api/v1/households/{household_id}": "a location inside the municipality (outside_municipality)",
    "POST /api/v1/households/{household_id}/placement": "a point inside the municipality (outside_municipality)",
    "GET /api/v1/households": "bbox: four numbers, each minimum below its maximum",
    "GET /api/v1/resources": "bbox: four numbers, each minimum below its maximum",
    "GET /api/v1/maps/isolation": "bbox: four numbers, each minimum below its maximum",
    "GET /api/v1/neighborhoods.geojson": "bbox: four numbers, each minimum below its maximum",
    "GET /api/v1/maps/neighborhoods.geojson": "bbox: four numbers, each minimum below its maximum",
    "PUT /api/v1/workers/{worker_id}/availability": "end_time after start_time, the default 17:00 included",
    "PUT /api/v1/campaigns/{campaign_id}/allocations": "each allocation names a target 自治会 of this campaign and a partner",
    "POST /api/v1/scheduled-visits/{visit_id}/reassign": "worker_id names an active outreach worker of the visit's corporation",
    # free-form entries: the text rule reaches every key and string inside, which JSON Schema
    # cannot say of values of any type
    "POST /api/v1/cases/{case_id}/plans": "roles are free-form objects checked by the text rule",
    # state the request cannot carry
    "POST /api/v1/sync/check": "the device must have been registered",
    "GET /api/v1/sync/pull": "the device must have been registered",
    "POST /api/v1/sync/push": "the device must have been registered",
    "POST /api/v1/sync/forms": "a survey definition's questions are checked by the form compiler",
    # the schema can only say "bytes"; whether they decode as JPEG/PNG/WebP/HEIC is the server's call
    "PUT /api/v1/sync/photos/{photo_id}": "the bytes must be an image",
}

# Operations behind a rate limit: after enough examples, a valid request is rightly told to wait.
THROTTLED = {
    "POST /api/v1/auth/token": "failed logins per (user, address) and logins per address",
}


def _accepting(labels: dict[str, str], *extra: str) -> list[dict[str, Any]]:
    """Per-operation configs, selected by the operation's label ("POST /api/v1/…"): schemathesis ORs
    separate include filters, so a method and a path given apart would select every operation of
    that method."""
    return [
        {"include-name": label, "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE_OK, *extra]}}}
        for label in labels
    ]


CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_OK}},
        "operations": [*_accepting(BEYOND_SCHEMA, "422"), *_accepting(THROTTLED, "429")],
    }
)
SCHEMA = schemathesis.openapi.from_dict(_published(), config=CONFIG)
SCHEMA.app = WSGIHandler()
OPERATIONS = sorted(
    (result.ok() for result in SCHEMA.get_all_operations()), key=lambda op: (op.path, op.method)
)


@pytest.fixture(scope="module")
def fuzz_town(django_db_setup, django_db_blocker):
    """One town for the module, inside a transaction that is rolled back at the end: the app runs
    in-process on the same connection, so it sees the rows without a commit, and each test's own
    `db` transaction (a savepoint in this one) undoes what its requests wrote. As in Django's test
    client, the end of a request must not close that connection."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            town = build_town("930003").with_outreach()
            town.with_photo()
            yield town
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            for signal in (signals.request_started, signals.request_finished):
                signal.connect(close_old_connections)


def _real_ids(town: Town) -> dict[str, Any]:
    worker = town.users["outreach_worker"]
    device_token = worker.device_tokens.first()
    return {
        "household_id": town.household.id,
        "resident_id": town.resident.id,
        "resource_id": town.resource.id,
        "neighborhood_id": town.neighborhood.id,
        "partner_id": town.partner.id,
        "campaign_id": town.campaign.id,
        "hearing_id": town.hearing.id,
        "job_id": town.job.id,
        "visit_id": town.visit.id,
        "photo_id": town.photo.id,
        "concern_id": town.concern.id,
        "case_id": town.case.id,
        "meeting_id": town.meeting.id,
        "watch_id": town.watch.id,
        "worker_id": worker.id,
        "user_id": worker.id,
        "token_id": device_token.pk if device_token else None,
    }


def _strategy(operation, town: Town) -> st.SearchStrategy:
    names = [p.name for p in operation.path_parameters]
    known = {k: str(v) for k, v in _real_ids(town).items() if k in names and v is not None}
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if known:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=known))
    return st.one_of(strategies)


def _settings() -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=EXAMPLES * 2,  # positive and negative
        derandomize=SEED is None,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # the first violation, unshrunk: keeps the run short
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_operation(operation, role, fuzz_town, db):
    token = fuzz_town.tokens[role]

    @hypothesis.given(case=_strategy(operation, fuzz_town))
    @_settings()
    def run(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"})

    if SEED is not None:
        run = hypothesis.seed(int(SEED))(run)
    run()


def test_every_published_operation_is_fuzzed():
    published = _published()["paths"]
    expected = {(method, path) for path, methods in published.items() for method in methods}
    assert {(op.method.lower(), op.path) for op in OPERATIONS} == expected
    assert len(expected) >= 80
    labels = {f"{method.upper()} {path}" for method, path in expected}
    assert set(BEYOND_SCHEMA) <= labels  # no exemption outlives its operation


def test_only_the_listed_operations_may_refuse_valid_input():
    """The relaxations above reach exactly the operations they name."""

    def expected(op) -> set[str]:
        config = SCHEMA.config.checks_config_for(operation=op).positive_data_acceptance
        return set(config.expected_statuses)

    by_label = {op.label: expected(op) for op in OPERATIONS}
    for label, statuses in by_label.items():
        extra = statuses - set(POSITIVE_OK)
        want = ({"422"} if label in BEYOND_SCHEMA else set()) | ({"429"} if label in THROTTLED else set())
        assert extra == want, label
    assert set(BEYOND_SCHEMA) | set(THROTTLED) <= set(by_label)


def test_every_operation_taking_a_date_is_listed_beyond_the_schema():
    """Every date a person types has a window relative to today (backend.dates), which JSON Schema
    cannot state: each operation that reads a date or a date-time must be in BEYOND_SCHEMA, or the
    fuzzer fails on whichever date it happens to draw."""
    document = _published()
    components = document["components"]["schemas"]

    def takes_a_date(node: Any, seen: frozenset[str] = frozenset()) -> bool:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                return name not in seen and takes_a_date(components[name], seen | {name})
            if node.get("format") in ("date", "date-time"):
                return True
            return any(takes_a_date(value, seen) for value in node.values())
        if isinstance(node, list):
            return any(takes_a_date(value, seen) for value in node)
        return False

    dated = {
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method, details in methods.items()
        if takes_a_date(details.get("requestBody")) or takes_a_date(details.get("parameters"))
    }
    assert dated, "the walk finds the dated operations"
    assert sorted(dated - set(BEYOND_SCHEMA)) == []
