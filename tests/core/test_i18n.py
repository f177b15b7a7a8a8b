"""Simplified Chinese by default, English through the switch, every string translated."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import REPO, Org

PO = REPO / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


@pytest.mark.django_db
def test_pages_are_chinese_even_when_the_browser_asks_for_english(client: Client) -> None:
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    body = response.content.decode()
    assert '<html lang="zh-CN">' in body
    assert "用户名" in body
    assert response["Content-Language"] == "zh-hans"


def test_language_switch_to_english_and_back(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/hq/"})
    assert response.status_code == 302
    assert response["Location"] == "/hq/"
    body = client.get("/hq/").content.decode()
    assert "Member operations board" in body
    assert "Build the pool" in body
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/hq/"})
    body = client.get("/hq/").content.decode()
    assert "会员运营看板" in body


def test_unknown_language_is_ignored(client: Client, org: Org) -> None:
    client.cookies["scrm_language"] = "klingon"
    client.force_login(org.hq_admin)
    assert "会员运营看板" in client.get("/hq/").content.decode()


def test_api_follows_accept_language(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    en = client.get("/api/v1/staff/me/", HTTP_ACCEPT_LANGUAGE="en").json()
    zh = client.get("/api/v1/staff/me/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert en["role_label"] == "HQ admin"
    assert zh["role_label"] == "总部管理员"


def test_every_message_is_translated() -> None:
    entries = PO.read_text(encoding="utf-8").split("\n\n")[1:]
    untranslated = [
        e
        for e in entries
        if 'msgstr ""' in e and '\nmsgstr ""\n"' not in e and "msgid_plural" not in e
    ]
    fuzzy = [e for e in entries if "#, fuzzy" in e]
    assert untranslated == []
    assert fuzzy == []


def test_compiled_catalogue_matches_the_po_file(tmp_path: Path) -> None:
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext's msgfmt is needed: run `bash .ci/install-system-deps`"
    compiled = tmp_path / "django.mo"
    subprocess.run([msgfmt, "--check", "-o", str(compiled), str(PO)], check=True)
    assert compiled.read_bytes() == MO.read_bytes(), (
        "locale/zh_Hans/LC_MESSAGES/django.mo is stale: run `python manage.py compilemessages`"
    )
