"""API v1 root, staff endpoints, the OpenAPI schema and the offline docs."""

import re

import pytest
from django.test import Client

from tests.conftest import Org


def test_api_requires_authentication(client: Client, db: None) -> None:
    for url in ("/api/v1/", "/api/v1/staff/me/", "/api/v1/org/stores/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response.json()["code"] == "not_authenticated"
        assert response.json()["message"]


def test_api_root_links_every_endpoint(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    links = client.get("/api/v1/").json()
    assert links["store-list"] == "http://testserver/api/v1/org/stores/"
    assert links["staff-me"] == "http://testserver/api/v1/staff/me/"
    assert links["me"] == "http://testserver/api/v1/me/"
    assert links["auth-wechat-login"] == "http://testserver/api/v1/auth/wechat-login"
    assert links["schema"] == "http://testserver/api/schema/"


def test_store_api_is_scoped(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    data = client.get("/api/v1/org/stores/").json()
    assert data["count"] == 1
    assert data["results"][0] == {
        "id": org.a1.pk,
        "code": "SH001",
        "name": "上海南京西路店",
        "city": "上海",
        "region": "华东大区",
        "is_active": True,
    }


def test_store_api_filters_and_rejects_bad_filters(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    data = client.get("/api/v1/org/stores/", {"region": org.region_b.pk}).json()
    assert [s["code"] for s in data["results"]] == ["BJ001"]
    bad = client.get("/api/v1/org/stores/", {"region": "not-a-number"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"
    assert "region" in bad.json()["fields"]


def test_me_describes_the_signed_in_staff(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    me = client.get("/api/v1/staff/me/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert me["username"] == "guide_a1"
    assert me["role"] == "guide"
    assert me["role_label"] == "导购"
    assert [s["code"] for s in me["stores"]] == ["SH001"]


@pytest.mark.django_db
def test_schema_describes_the_api(client: Client) -> None:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "SCRM API"
    assert {
        "/api/v1/",
        "/api/v1/staff/me/",
        "/api/v1/org/stores/",
        "/api/v1/me/",
        "/api/v1/auth/wechat-login",
        "/api/v1/auth/refresh",
        "/api/v1/me/phone",
    } <= set(schema["paths"])


@pytest.mark.django_db
def test_api_docs_load_only_local_assets(client: Client) -> None:
    body = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in body
    sources = re.findall(r'(?:src|href)="([^"]+)"', body)
    assert sources, "the docs page should load its assets"
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
    assert any("/static/drf_spectacular_sidecar/" in s for s in sources)
