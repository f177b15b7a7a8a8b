"""Test settings: the real settings with a test key, a fast password hasher and a broker
folder of their own (so a test worker never picks up messages from `make run`)."""

import copy
import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-any-deployment-3f9a7c")
os.environ.setdefault(
    "SCRM_BROKER_DIR", str(Path(__file__).resolve().parent.parent / ".data" / "test-broker")
)

from scrm.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_COOKIES = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
CELERY_BEAT_SCHEDULE = {}  # noqa: F405
# Counts come from SQL in tests unless a test builds the engine's snapshot itself (a
# background snapshot would go stale between a test's writes and its counts).
SEGMENT_ENGINE = False

# The phone sweep (tests/phone_sweep.py) reads every response and log line the suite makes.
MIDDLEWARE = ["tests.phone_sweep.PhoneSweepMiddleware", *MIDDLEWARE]  # noqa: F405
LOGGING = copy.deepcopy(LOGGING)  # noqa: F405
LOGGING["handlers"]["phone_sweep"] = {  # type: ignore[index]
    "class": "tests.phone_sweep.PhoneSweepHandler",
    "level": "DEBUG",
}
LOGGING["root"]["handlers"].append("phone_sweep")  # type: ignore[index]
