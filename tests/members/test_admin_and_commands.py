"""Every admin page opens for the HQ admin; the sandbox code command issues usable codes."""

from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.test import Client

from members.models import SandboxWechatCode
from tests.conftest import Org
from tests.members.factories import IdentityFactory, OrderFactory, phone_identity


def test_every_admin_changelist_and_add_page_opens(client: Client, org: Org) -> None:
    org.hq_admin.is_superuser = True
    org.hq_admin.save(update_fields=["is_superuser"])
    IdentityFactory(member=org.member_of_guide_a1)
    OrderFactory(member=org.member_of_guide_a1)
    client.force_login(org.hq_admin)
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/"
        assert client.get(url).status_code == 200, url
        if model_admin.has_add_permission(type("R", (), {"user": org.hq_admin})()):
            assert client.get(f"{url}add/").status_code == 200, url
        first = model_admin.get_queryset(type("R", (), {"user": org.hq_admin})()).first()
        if first is not None:
            assert client.get(f"{url}{first.pk}/change/").status_code == 200, url


@pytest.mark.django_db
def test_sandbox_code_command_issues_login_and_phone_codes(client: Client) -> None:
    out = StringIO()
    call_command("sandbox_wechat_code", openid="oDev", unionid="oUDev", stdout=out)
    code = out.getvalue().strip()
    response = client.post(
        "/api/v1/auth/wechat-login", {"code": code}, content_type="application/json"
    )
    assert response.status_code == 200
    out = StringIO()
    call_command("sandbox_wechat_code", phone="13812345678", stdout=out)
    assert SandboxWechatCode.objects.get(code=out.getvalue().strip()).phone == "13812345678"


@pytest.mark.django_db
def test_sandbox_code_command_refuses_bad_input() -> None:
    for kwargs in ({}, {"openid": "x", "phone": "13812345678"}, {"phone": "123"}):
        with pytest.raises(CommandError):
            call_command("sandbox_wechat_code", stdout=StringIO(), **kwargs)
    assert not SandboxWechatCode.objects.exists()


def test_admin_masks_phones_without_the_permission(client: Client, org: Org) -> None:
    from django.contrib.auth.models import Permission

    member = org.member_of_guide_a1
    phone = phone_identity(member)
    org.store_manager_a1.is_staff = True
    org.store_manager_a1.save(update_fields=["is_staff"])
    org.store_manager_a1.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_member", "view_identity", "change_member"])
    )
    client.force_login(org.store_manager_a1)
    pages = [
        client.get("/admin/members/member/"),
        client.get(f"/admin/members/member/{member.pk}/change/"),
        client.get("/admin/members/identity/"),
        client.get(f"/admin/members/identity/{phone.pk}/change/"),
    ]
    for response in pages:
        assert response.status_code == 200
        body = response.content.decode()
        assert "+8613800001234" not in body and "13800001234" not in body
        assert "*******1234" in body


def test_admin_history_lists_follow_the_members_scope(client: Client, org: Org) -> None:
    from django.contrib.auth.models import Permission

    from members.models import LifecycleChange, MergeSuggestion
    from members.services.identity import merge_suggestion_raise
    from members.services.lifecycle import member_refresh_stage
    from tests.members.factories import MemberFactory

    for member in (org.member_a1_unassigned, org.member_b1):
        member.lifecycle_stage = "prospect"
        member.save(update_fields=["lifecycle_stage"])
        IdentityFactory(member=member, kind="unionid", value=f"oU{member.pk}")
        member_refresh_stage(member=member, reason="followed")
    merge_suggestion_raise(
        first=org.member_b1,
        second=MemberFactory(home_store=org.b1),
        reason="same name",
        evidence=[],
    )
    assert LifecycleChange.objects.count() == 2 and MergeSuggestion.objects.count() == 1
    org.store_manager_a1.is_staff = True
    org.store_manager_a1.save(update_fields=["is_staff"])
    org.store_manager_a1.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_lifecyclechange", "view_mergesuggestion"])
    )
    client.force_login(org.store_manager_a1)
    changes = client.get("/admin/members/lifecyclechange/").context["cl"].result_list
    assert [c.member_id for c in changes] == [org.member_a1_unassigned.pk]
    suggestions = client.get("/admin/members/mergesuggestion/").context["cl"].result_list
    assert list(suggestions) == []


def test_setting_a_phone_in_the_admin_links_the_identity_lookups_use(org: Org) -> None:
    """The admin's *Set phone* goes through the phone service: the member's sealed copy and
    digest, and the phone identity that replaces the old number's."""
    from django.test import RequestFactory

    from members.admin import MemberAdmin, MemberAdminForm
    from members.models import Identity, Member
    from scrm.core.pii import phone_digest

    member = org.member_of_guide_a1
    old = phone_identity(member)
    data = {
        "name": member.name,
        "gender": member.gender,
        "city": member.city,
        "new_phone": "139 1234 5678",
    }
    form = MemberAdminForm(data=data, instance=member)
    assert form.is_valid(), form.errors
    request = RequestFactory().post("/admin/")
    request.user = org.hq_admin
    MemberAdmin(Member, admin.site).save_model(request, form.save(commit=False), form, True)

    member.refresh_from_db()
    assert member.reveal_phone() == "+8613912345678"
    assert list(
        Identity.objects.filter(member=member, kind="phone").values_list("value", "hint")
    ) == [(phone_digest("+8613912345678"), "5678")]
    assert not Identity.objects.filter(pk=old.pk).exists()


@pytest.mark.parametrize(
    ("typed", "message"),
    [("12345", "手机号"), ("13900001111", "另一位会员记录")],
)
def test_the_admin_refuses_a_bad_phone_or_another_members_and_writes_nothing(
    org: Org, typed: str, message: str
) -> None:
    from members.admin import MemberAdminForm
    from members.models import Identity

    phone_identity(org.member_b1, "+8613900001111")
    member = org.member_of_guide_a1
    before = (member.phone_digest, list(Identity.objects.values_list("pk", "value")))
    data = {"name": member.name, "gender": member.gender, "city": member.city, "new_phone": typed}
    form = MemberAdminForm(data=data, instance=member)
    assert not form.is_valid()
    assert message in " ".join(form.errors["new_phone"])
    member.refresh_from_db()
    assert (member.phone_digest, list(Identity.objects.values_list("pk", "value"))) == before


def test_the_phone_service_refuses_a_number_another_member_holds(org: Org) -> None:
    from members.models import Identity
    from members.services.errors import MemberError
    from members.services.phones import member_set_phone

    phone_identity(org.member_b1, "+8613900001111")
    member = org.member_of_guide_a1
    before = (member.phone_digest, Identity.objects.count())
    with pytest.raises(MemberError) as refused:
        member_set_phone(member=member, phone="+8613900001111")
    assert refused.value.code == "phone_taken"
    member.refresh_from_db()
    assert (member.phone_digest, Identity.objects.count()) == before
