"""Settings come from the environment; unsafe or unsupported configurations refuse to start."""

import os
import subprocess
import sys

from tests.conftest import REPO


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "ALLOWED_HOSTS"}
    }
    return subprocess.run(
        [sys.executable, "-c", "import scrm.settings as s; print(s.DEBUG, s.ALLOWED_HOSTS)"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_on_the_default_secret_key_with_debug_off() -> None:
    result = _import_settings(DEBUG="0", DATABASE_URL="postgres://x@127.0.0.1:1/x")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_starts_with_a_real_secret_key_and_reads_allowed_hosts() -> None:
    result = _import_settings(
        DEBUG="0",
        SECRET_KEY="k" * 50,
        ALLOWED_HOSTS="scrm.example.com",
        DATABASE_URL="postgres://x@127.0.0.1:1/x",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False ['scrm.example.com']"


def test_debug_mode_allows_the_development_key() -> None:
    result = _import_settings(DEBUG="1", DATABASE_URL="postgres://x@127.0.0.1:1/x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("True")


def test_refuses_a_database_other_than_postgresql() -> None:
    result = _import_settings(DEBUG="1", DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode != 0
    assert "PostgreSQL only" in result.stderr


def test_deploy_checks_pass_with_production_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DEBUG="0",
        SECRET_KEY="p9$Kq2!vX7#mZr4&Lw8^Tn1*Bs6(Hd3)Jf5-Gc0+Ye_Ua7%Qi2@Oe",
        SCRM_PII_KEY="Zt4#nV9qLr2$Wm7xKc5^Hb8pJd3&Fs6gYe1*Ua0oQi",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
        SECURE_SSL_REDIRECT="1",
        ALLOWED_HOSTS="scrm.example.com",
        DJANGO_SETTINGS_MODULE="scrm.settings",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
