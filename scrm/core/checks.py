"""Deployment checks of our own (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

MIN_PII_KEY_LENGTH = 32


@register(Tags.security, deploy=True)
def check_pii_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
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
