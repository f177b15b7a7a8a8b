"""Login, landing pages, logout, and the clear answers for refused access."""

import pytest
from django.test import Client

from scrm.org.models import Staff
from scrm.org.scoping import Role
from tests.conftest import Org
from tests.org.factories import PASSWORD, StaffFactory

pytestmark = pytest.mark.django_db


def _login(client: Client, username: str, password: str = PASSWORD, next_url: str = ""):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/login/", data)


@pytest.mark.parametrize(
    ("role_name", "landing"),
    [
        ("hq_admin", "/hq/"),
        ("hq_operator", "/hq/"),
        ("region_manager_a", "/hq/"),
        ("store_manager_a1", "/hq/"),
        ("guide_a1", "/m/"),
    ],
)
def test_each_role_lands_on_its_workspace(
    client: Client, org: Org, role_name: str, landing: str
) -> None:
    user = getattr(org, role_name)
    response = _login(client, user.username)
    assert response.status_code == 302
    assert response["Location"] == landing
    page = client.get(landing)
    assert page.status_code == 200
    assert page.context["user"].pk == user.pk


def test_wrong_password_is_refused_with_a_message_and_changes_nothing(
    client: Client, org: Org
) -> None:
    response = _login(client, "guide_a1", "not-the-password")
    assert response.status_code == 200
    assert "用户名或密码错误" in response.content.decode()
    assert "_auth_user_id" not in client.session
    org.guide_a1.refresh_from_db()
    assert org.guide_a1.last_login is None


def test_disabled_account_is_told_so_and_not_logged_in(client: Client, org: Org) -> None:
    org.guide_a1.is_active = False
    org.guide_a1.save(update_fields=["is_active"])
    response = _login(client, "guide_a1")
    assert response.status_code == 200
    assert "该账号已被停用" in response.content.decode()
    assert "_auth_user_id" not in client.session
    org.guide_a1.refresh_from_db()
    assert org.guide_a1.last_login is None
    assert org.guide_a1.is_active is False


def test_disabled_account_with_wrong_password_gets_the_generic_message(
    client: Client, org: Org
) -> None:
    org.guide_a1.is_active = False
    org.guide_a1.save(update_fields=["is_active"])
    body = _login(client, "guide_a1", "wrong").content.decode()
    assert "用户名或密码错误" in body
    assert "停用" not in body


def test_account_without_role_is_refused(client: Client, db: None) -> None:
    StaffFactory(username="nobody", role="")
    response = _login(client, "nobody")
    assert "尚未分配角色" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_guide_opening_an_hq_url_gets_403_with_a_way_back(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    for url in ("/hq/", "/hq/org/stores/", "/hq/org/staff/", "/hq/system/"):
        response = client.get(url)
        assert response.status_code == 403, url
        body = response.content.decode()
        assert "导购请使用手机工作台" in body
        assert 'href="/m/"' in body


def test_guide_cannot_post_to_hq_actions(client: Client, org: Org) -> None:
    from scrm.core.models import WorkerPing

    client.force_login(org.guide_a1)
    assert client.post("/hq/system/ping/").status_code == 403
    assert WorkerPing.objects.count() == 0


def test_guide_is_refused_by_the_admin(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_hq_operator_opening_the_mobile_workspace_gets_403(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    response = client.get("/m/")
    assert response.status_code == 403
    assert "手机工作台仅供导购和店长使用" in response.content.decode()


def test_anonymous_visitors_are_sent_to_the_right_login(client: Client, db: None) -> None:
    assert client.get("/hq/org/stores/")["Location"] == "/hq/login/?next=/hq/org/stores/"
    assert client.get("/m/")["Location"] == "/m/login/?next=/m/"


def test_login_follows_a_safe_next_link(client: Client, org: Org) -> None:
    response = _login(client, "hq_operator", next_url="/hq/org/staff/")
    assert response["Location"] == "/hq/org/staff/"


def test_login_ignores_an_offsite_next_link(client: Client, org: Org) -> None:
    response = _login(client, "hq_operator", next_url="https://evil.example.com/")
    assert response["Location"] == "/hq/"


def test_guide_with_an_hq_next_link_lands_on_mobile(client: Client, org: Org) -> None:
    response = _login(client, "guide_a1", next_url="/hq/org/stores/")
    assert response["Location"] == "/m/"


def test_mobile_login_page_is_laid_out_for_phones(client: Client, db: None) -> None:
    body = client.get("/m/login/").content.decode()
    assert "导购工作台" in body
    assert 'name="viewport"' in body


def test_logout_needs_post_and_ends_the_session(client: Client, org: Org) -> None:
    client.force_login(org.hq_admin)
    assert client.get("/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post("/logout/")
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert client.get("/hq/").status_code == 302


def test_signed_in_user_visiting_root_goes_to_their_workspace(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    assert client.get("/")["Location"] == "/m/"


def test_roles_decide_workspaces(db: None) -> None:
    expectations = {
        Role.HQ_ADMIN: (True, False),
        Role.HQ_OPERATOR: (True, False),
        Role.REGION_MANAGER: (True, False),
        Role.STORE_MANAGER: (True, True),
        Role.GUIDE: (False, True),
    }
    for role, (hq, mobile) in expectations.items():
        staff: Staff = StaffFactory.create(role=role)
        assert (staff.can_use_hq, staff.can_use_mobile) == (hq, mobile), role
