"""Sign-in protection: repeated failures lock a user name out from that address (HQ and
/m/, the admin) and a token endpoint out for that address (the mini-program); a lockout
signs nobody in and changes nothing, ends after the cool-off, and other users and
addresses are not affected. Security headers are on every answer."""

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from members.models import MemberSession
from scrm.core.security import client_ip
from tests.conftest import Org
from tests.members.factories import SandboxLoginCodeFactory
from tests.org.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _sign_in(client: Client, path: str, username: str, password: str) -> Any:
    return client.post(path, {"username": username, "password": password})


def _signed_in(client: Client) -> bool:
    return client.get("/hq/").status_code == 200


def test_five_wrong_passwords_lock_that_user_out_from_that_address(
    org: Org, client: Client
) -> None:
    client.cookies["scrm_language"] = "en"
    for _attempt in range(4):
        response = _sign_in(client, "/hq/login/", "hq_operator", "wrong")
        assert response.status_code == 200
        assert 'data-testid="login-error"' in response.content.decode()
    locked = _sign_in(client, "/hq/login/", "hq_operator", "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    # The right password does not get in while the lockout lasts.
    assert _sign_in(client, "/hq/login/", "hq_operator", PASSWORD).status_code == 429
    assert not _signed_in(client)
    # Another user at the same address signs in as usual.
    other = Client()
    assert _sign_in(other, "/hq/login/", "hq_admin", PASSWORD).status_code == 302
    assert _signed_in(other)
    # The same user from another address too.
    elsewhere = Client(REMOTE_ADDR="10.9.8.7")
    assert _sign_in(elsewhere, "/hq/login/", "hq_operator", PASSWORD).status_code == 302
    # After the cool-off the user signs in again, and the count starts over.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _sign_in(client, "/hq/login/", "hq_operator", PASSWORD).status_code == 302
    assert _signed_in(client)
    assert not AccessAttempt.objects.filter(username="hq_operator", ip_address="127.0.0.1")


def test_the_lockout_page_is_in_chinese_and_links_back_to_the_right_sign_in(
    org: Org, client: Client
) -> None:
    for _attempt in range(5):
        response = _sign_in(client, "/m/login/", "guide_a1", "wrong")
    assert response.status_code == 429
    page = response.content.decode()
    assert "登录失败次数过多" in page
    assert 'href="/m/login/"' in page


def test_the_admin_sign_in_is_locked_out_the_same_way(org: Org, client: Client) -> None:
    for _attempt in range(5):
        response = _sign_in(client, "/admin/login/", "hq_admin", "wrong")
    assert response.status_code == 429
    assert _sign_in(client, "/admin/login/", "hq_admin", PASSWORD).status_code == 429
    assert client.get("/admin/").status_code == 302  # still sent to sign in


def test_a_successful_sign_in_clears_earlier_failures(org: Org, client: Client) -> None:
    for _attempt in range(4):
        _sign_in(client, "/hq/login/", "hq_operator", "wrong")
    assert _sign_in(client, "/hq/login/", "hq_operator", PASSWORD).status_code == 302
    client.logout()
    for _attempt in range(4):
        assert _sign_in(client, "/hq/login/", "hq_operator", "wrong").status_code == 200


@override_settings(LOGIN_API_FAILURE_LIMIT=3)
def test_bad_refresh_tokens_lock_the_endpoint_out_for_that_address(client: Client) -> None:
    tokens = client.post(
        "/api/v1/auth/wechat-login",
        {"code": SandboxLoginCodeFactory().code},
        content_type="application/json",
    ).json()
    session = MemberSession.objects.get()
    for attempt in range(3):
        bad = client.post(
            "/api/v1/auth/refresh", {"refresh": f"guess-{attempt}"}, content_type="application/json"
        )
        assert bad.status_code == 401
        assert bad.json()["code"] == "refresh_invalid"
    refused = client.post(
        "/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert refused.status_code == 429
    assert refused.json()["code"] == "locked_out"
    assert "15" in refused.json()["message"]
    assert refused["Retry-After"] == str(15 * 60)
    # Refused before anything ran: the real token was not rotated.
    session.refresh_from_db()
    assert MemberSession.objects.get().refresh_token_hash == session.refresh_token_hash
    # Another address is not affected; the valid token still works from there.
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    ok = elsewhere.post(
        "/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert ok.status_code == 200
    # Staff sign-ins from the locked address are counted apart.
    assert not AccessAttempt.objects.filter(username="hq_operator")


@override_settings(LOGIN_API_FAILURE_LIMIT=2)
def test_wechat_sign_in_counts_refused_codes_only(client: Client) -> None:
    for attempt in range(2):
        response = client.post(
            "/api/v1/auth/wechat-login",
            {"code": f"no-such-code-{attempt}"},
            content_type="application/json",
        )
        assert response.status_code == 400
    locked = client.post(
        "/api/v1/auth/wechat-login",
        {"code": SandboxLoginCodeFactory().code},
        content_type="application/json",
    )
    assert locked.status_code == 429
    assert not MemberSession.objects.exists()


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_client_is_the_address_the_proxy_saw() -> None:
    from django.test import RequestFactory

    spoofed = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.9"
    )
    assert client_ip(spoofed) == "203.0.113.9"
    direct = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2")
    assert client_ip(direct) == "10.0.0.2"
    with override_settings(TRUSTED_PROXY_COUNT=0):
        assert client_ip(spoofed) == "10.0.0.2"


def test_security_headers_are_on_every_answer(org: Org, client: Client) -> None:
    client.force_login(org.hq_operator)
    for path in ("/hq/", "/hq/login/", "/api/v1/", "/api/docs/"):
        response = client.get(path)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_check_deploy_is_clean_with_the_production_settings() -> None:
    """`deploy/production.env` and a real secret key: no deployment warning at all."""
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings
    from django.db import connection

    root = Path(settings.BASE_DIR)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_"))
    }
    for line in (root / "deploy" / "production.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    db = connection.settings_dict
    env.update(
        DJANGO_SETTINGS_MODULE="scrm.settings",
        SECRET_KEY=secrets.token_urlsafe(60),
        SCRM_PII_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="scrm.example.com",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
