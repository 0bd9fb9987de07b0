"""Production settings: refuse to start without their environment, and pass check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent

def _url(role: str) -> str:
    """The test database, as `role` (the roles scripts/pg.sh creates)."""
    db = settings.DATABASES["default"]
    return f"postgis://{role}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


PRODUCTION_ENV = {
    "TSUNAGU_ENV": "production",
    "SECRET_KEY": "x7Qp2-production-secret-key-for-the-deploy-check-Zr8mK4vN1wLs9dT3",
    "DATABASE_URL": _url("tsunagu_app"),
    "DATABASE_OWNER_URL": _url("tsunagu_owner"),
    "ALLOWED_HOSTS": "tsunagu.example.lg.jp",
}
ENV_NAMES = {"SECRET_KEY", "DATABASE_URL", "DATABASE_OWNER_URL", "ALLOWED_HOSTS", "TSUNAGU_ENV", "TSUNAGU_DB_APP_ROLE"}


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    base["DJANGO_SETTINGS_MODULE"] = "backend.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "DATABASE_OWNER_URL", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


@pytest.mark.django_db
def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "warning"), [("tsunagu_owner", "rls.W003"), ("postgres", "rls.W001")])
def test_check_deploy_warns_when_the_application_connects_as_owner_or_superuser(role, warning):
    result = manage("check", "--deploy", env={**PRODUCTION_ENV, "DATABASE_URL": _url(role)})
    assert warning in result.stderr + result.stdout


def test_development_defaults_need_no_environment():
    result = manage("check", env={"TSUNAGU_ENV": "development"})
    assert result.returncode == 0, result.stderr


def test_unknown_profile_is_refused():
    result = manage("check", env={"TSUNAGU_ENV": "staging"})
    assert result.returncode != 0
    assert "TSUNAGU_ENV" in result.stderr


def test_the_test_profile_runs_jobs_inline_and_retry_outlasts_timeout():
    q = settings.Q_CLUSTER
    assert q["orm"] == "default"
    assert q["sync"] is True
    assert q["retry"] > q["timeout"]
