"""Back offices often sit on intranets: pages load nothing from a CDN."""

import re
from pathlib import Path

from django.contrib.staticfiles import finders

from tests.conftest import REPO

TEMPLATES = sorted((REPO / "templates").rglob("*.html"))
EXTERNAL = re.compile(r'(?:src|href)\s*=\s*["\'](?:https?:)?//', re.IGNORECASE)
STATIC_TAG = re.compile(r"{%\s*static\s+['\"]([^'\"]+)['\"]\s*%}")


def test_templates_reference_no_external_assets() -> None:
    offenders = [str(p.relative_to(REPO)) for p in TEMPLATES if EXTERNAL.search(p.read_text())]
    assert TEMPLATES
    assert offenders == []


def test_every_static_reference_exists() -> None:
    referenced = {name for p in TEMPLATES for name in STATIC_TAG.findall(p.read_text())}
    assert "css/scrm.css" in referenced
    missing = [name for name in referenced if not finders.find(name)]
    assert missing == []


def test_htmx_is_served_from_our_static_files() -> None:
    found = finders.find("django_htmx/htmx-2.min.js")
    assert found and Path(found).stat().st_size > 10_000
