"""/healthz and `manage.py healthcheck`: 200 when the database and broker are up, 503 when not."""

import json
import os
import subprocess
import sys

import pytest
from django.test import Client

from scrm.celery import app as celery_app
from tests.conftest import REPO

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker_up(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert report["database"]["ok"] is True
    assert report["broker"]["ok"] is True
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_needs_no_login_and_refuses_writes(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


def test_healthz_is_503_when_the_broker_is_down(client: Client, monkeypatch) -> None:
    # Nothing listens on port 1: the broker is unreachable.
    # Celery reads CELERY_BROKER_URL from the environment before its own settings.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unavailable"
    assert report["broker"]["ok"] is False
    assert report["database"]["ok"] is True


def test_healthz_is_503_when_the_filesystem_broker_folder_is_gone(
    client: Client,
    monkeypatch,
    tmp_path,
) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    monkeypatch.setattr(celery_app.conf, "broker_url", "filesystem://")
    monkeypatch.setitem(
        celery_app.conf, "broker_transport_options", {"data_folder_in": str(tmp_path / "missing")}
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "missing" in response.json()["broker"]["detail"]


def _run_with_database_down(code: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": "postgres://scrm@127.0.0.1:1/scrm",
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_healthz_is_503_when_the_database_is_down() -> None:
    result = _run_with_database_down(
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["status"] == 503
    assert output["body"]["database"]["ok"] is False
    assert output["body"]["status"] == "unavailable"


def test_healthcheck_command_exits_1_when_the_database_is_down() -> None:
    result = _run_with_database_down(
        "import sys; sys.argv = ['manage.py', 'healthcheck'];from manage import main; main()"
    )
    assert result.returncode == 1
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["database"]["ok"] is False
