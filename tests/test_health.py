import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_health_reports_database_and_postgis(anon, db):
    r = anon.get("health")
    assert r.status_code == 200
    body = r.json()
    assert body["database"]["ok"] is True
    assert body["database"]["postgis"].startswith("3.")
    assert body["jobs"]["cluster_seen"] is False  # no cluster runs during tests
    assert body["status"] == "degraded"


def test_health_is_503_when_the_database_is_down():
    code = (
        "import django; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/api/v1/health');"
        "print(r.status_code); print(r.content.decode())"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "backend.settings_test",
           "DATABASE_URL": "postgis://postgres@127.0.0.1:9/nowhere", "DB_CONNECT_TIMEOUT": "2"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = result.stdout.splitlines()
    assert lines and lines[0] == "503", result.stdout + result.stderr
    assert json.loads(lines[1])["database"]["ok"] is False
    assert "127.0.0.1" not in lines[1]  # no connection details leak
