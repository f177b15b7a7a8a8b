"""Deployment checks of our own (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

from scrm.core.pii import current_key_also_previous

MIN_PII_KEY_LENGTH = 32


@register(Tags.security, deploy=True)
def check_pii_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return _check_current_pii_key() + _check_previous_pii_keys()


def _check_previous_pii_keys() -> list[CheckMessage]:
    previous = settings.PII_PREVIOUS_KEYS
    if not previous:
        return []
    if current_key_also_previous():
        return [
            Warning(
                "SCRM_PII_KEY is also listed in SCRM_PII_PREVIOUS_KEYS.",
                hint="List only the keys SCRM_PII_KEY replaced; rotate_pii_key refuses to run "
                "until then.",
                id="scrm.W003",
            )
        ]
    # Whether rows still hold them takes reading every stored phone: the command says.
    return [
        Warning(
            "SCRM_PII_PREVIOUS_KEYS is set: a key rotation is under way.",
            hint="Run `manage.py rotate_pii_key`; once `manage.py rotate_pii_key --check` says "
            "no row holds a previous key, remove SCRM_PII_PREVIOUS_KEYS.",
            id="scrm.W004",
        )
    ]


def _check_current_pii_key() -> list[CheckMessage]:
    if settings.PII_KEY_DERIVED:
        return [
            Warning(
                "SCRM_PII_KEY is not set: phone digests and sealed phones use a key derived "
                "from SECRET_KEY, so changing SECRET_KEY would make every stored phone "
                "unreadable.",
                hint="Set SCRM_PII_KEY to a long random value (at least 32 characters) once, "
                "and keep it with the database backups.",
                id="scrm.W001",
            )
        ]
    if len(settings.PII_KEY) < MIN_PII_KEY_LENGTH:
        return [
            Warning(
                "SCRM_PII_KEY is shorter than 32 characters.",
                hint="Use a long random value, e.g. python -c "
                "'import secrets; print(secrets.token_urlsafe(48))'.",
                id="scrm.W002",
            )
        ]
    return []
