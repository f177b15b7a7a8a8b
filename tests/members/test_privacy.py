"""Data-subject requests from head office: a member's archive, and erasure (PIPL)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models
from django.test import Client
from django.utils import timezone

from campaigns.models import ConsentPurpose, InboxMessage, MarketingOptOut
from campaigns.selectors.consent import consent_states
from members.models import (
    Identity,
    IdentityKind,
    LedgerEntry,
    Member,
    MemberMerge,
    MemberTag,
    Order,
    ServiceNote,
)
from members.services.errors import MemberError
from members.services.guides import note_add
from members.services.merge import member_merge, member_merge_undo
from members.services.orders import LineInput, order_record
from members.services.points import points_adjust
from members.services.privacy import HOLDINGS, member_erase
from members.services.tags import member_tag_add
from scrm.audit.models import AuditAction, AuditEvent
from scrm.core.models import AuditEvent as ActionEvent
from tests.conftest import Org
from tests.members.factories import IdentityFactory, MemberFactory, TagFactory

pytestmark = pytest.mark.django_db


def _rich_member(org: Org) -> Member:
    """A member with something in most places a person's data lands."""
    member = MemberFactory(
        name="隐私测试", home_store=org.a1, guide=org.guide_a1, birthday=date(1990, 5, 6)
    )
    IdentityFactory(member=member, kind=IdentityKind.TMALL, value="tb-privacy-1")
    order_record(
        channel="pos",
        external_id="PRIV-1",
        member=member,
        paid_at=timezone.now() - timedelta(days=2),
        amount=Decimal("88.00"),
        store=org.a1,
        lines=[LineInput(sku="SKU1", product_name="面霜", quantity=1, unit_price=Decimal("88"))],
    )
    points_adjust(
        member_id=member.pk,
        kind="activity",
        amount=50,
        reason="补偿",
        actor=org.hq_operator,
        external_id="adj-priv-1",
    )
    member_tag_add(member=member, tag=TagFactory(), actor=org.hq_operator)
    note_add(member=member, author=org.guide_a1, body="喜欢玫瑰香型，住在静安区")
    InboxMessage.objects.create(member=member, key="welcome", title="欢迎", body="隐私测试，你好")
    return member


def _sign_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def _archive(response: Any) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: json.loads(archive.read(name)) for name in archive.namelist()}


def test_every_table_that_points_at_a_member_is_a_holding() -> None:
    """A new table about members must say what export and erasure do with it."""
    member_model = apps.get_model("members.Member")
    held = {holding.label for holding in HOLDINGS}
    owned = {member_model._meta.label}
    about_members: set[str] = set()
    for model in apps.get_models(include_auto_created=True):
        for column in model._meta.concrete_fields:
            points_at_member = (
                isinstance(column, models.ForeignKey) and column.related_model is member_model
            ) or (column.attname == "member_id" and not column.is_relation)
            if points_at_member:
                about_members.add(model._meta.label)
    # Rows owned through a member's rows (an order's lines, an account's ledger).
    for model in apps.get_models(include_auto_created=True):
        for column in model._meta.concrete_fields:
            if (
                isinstance(column, models.ForeignKey)
                and column.related_model._meta.label in about_members
                and column.related_model._meta.label in held
                and not column.related_model._meta.label.startswith("members.Member")
                and model._meta.label in held
            ):
                about_members.add(model._meta.label)
    # The audit trail is scrubbed by its own function; the member row is the subject.
    expected = about_members - owned - {"audit.AuditEvent"}
    assert expected - held == set()
    for holding in HOLDINGS:
        assert holding.on_erase in {"delete", "keep", "scrub"}
        holding.model  # the label names a real model  # noqa: B018


def test_head_office_downloads_everything_held_on_a_member(client: Client, org: Org) -> None:
    member = _rich_member(org)
    twin = MemberFactory(name="隐私测试", home_store=org.a1)
    IdentityFactory(member=twin, kind=IdentityKind.JD, value="jd-privacy-2")
    member_merge(keep=member, drop=twin, actor=org.hq_admin)

    response = _sign_in(client, org.hq_operator).post(f"/hq/members/{member.pk}/privacy/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"member-{member.pk}-personal-data.zip" in response["Content-Disposition"]
    assert response["Cache-Control"] == "no-store"
    files = _archive(response)
    manifest = files["manifest.json"]
    assert manifest["member"] == member.pk
    assert manifest["merged_members"] == [twin.pk]
    assert manifest["generated_by"] == "hq_operator"
    for name, count in manifest["files"].items():
        assert len(files[name]) == count, name
    people = {row["id"]: row for row in files["member.json"]}
    assert people[member.pk]["name"] == "隐私测试"
    assert people[member.pk]["phone"] == member.reveal_phone()  # their own, in full
    assert people[member.pk]["birthday"] == "1990-05-06"
    assert {row["value"] for row in files["members.Identity.json"]} >= {
        "tb-privacy-1",
        "jd-privacy-2",
    }
    assert [row["external_id"] for row in files["members.Order.json"]] == ["PRIV-1"]
    assert [row["product_name"] for row in files["members.OrderLine.json"]] == ["面霜"]
    assert 50 in [row["amount"] for row in files["members.LedgerEntry.json"]]
    assert [row["body"] for row in files["members.ServiceNote.json"]] == [
        "喜欢玫瑰香型，住在静安区"
    ]
    assert len(files["members.MemberTag.json"]) == 1
    assert [row["body"] for row in files["campaigns.InboxMessage.json"]] == ["隐私测试，你好"]
    assert {row["action"] for row in files["audit.actions.json"]} >= {
        "member.merge",
        "points.adjust",
    }
    assert "members.MemberSession.json" in files
    assert all("refresh_token_hash" not in row for row in files["members.MemberSession.json"])
    export = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert (export.member_id, export.actor_label) == (member.pk, "hq_operator")
    assert export.origin == f"/hq/members/{member.pk}/privacy/export/"


def test_the_archive_is_for_head_office_and_by_post_only(client: Client, org: Org) -> None:
    member = org.member_of_guide_a1
    manager = _sign_in(Client(), org.store_manager_a1)
    assert manager.post(f"/hq/members/{member.pk}/privacy/export/").status_code == 403
    assert manager.get(f"/hq/members/{member.pk}/privacy/").status_code == 403
    operator = _sign_in(client, org.hq_operator)
    assert operator.get(f"/hq/members/{member.pk}/privacy/export/").status_code == 405
    assert operator.post("/hq/members/999999/privacy/export/").status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_erasure_needs_the_member_number_typed(client: Client, org: Org) -> None:
    member = _rich_member(org)
    operator = _sign_in(client, org.hq_operator)
    page = operator.get(f"/hq/members/{member.pk}/privacy/erase/")
    assert page.status_code == 200
    assert "隐私测试" in page.content.decode()

    for typed in ["", "1", str(member.pk + 1), "删除"]:
        response = operator.post(f"/hq/members/{member.pk}/privacy/erase/", {"confirm": typed})
        assert response.status_code == 400
        assert f"{member.pk}" in response.content.decode()
    member.refresh_from_db()
    assert (member.name, member.erased_at) == ("隐私测试", None)
    assert Identity.objects.filter(member=member).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.ERASE).exists()


def test_erasure_anonymises_deletes_and_scrubs_the_history(client: Client, org: Org) -> None:
    member = _rich_member(org)
    phone = member.reveal_phone()
    # A change recorded in the audit trail that carries the old name.
    Member.objects.filter(pk=member.pk).update(name="隐私测试改名", city="上海")
    member.refresh_from_db()

    response = _sign_in(client, org.hq_admin).post(
        f"/hq/members/{member.pk}/privacy/erase/", {"confirm": f"#{member.pk}"}, follow=True
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "个人信息已删除" in page or "Personal data erased" in page
    member = Member.all_objects.get(pk=member.pk)
    assert (member.name, member.city, member.birthday) == ("", "", None)
    assert member.erased_at is not None
    assert member.reveal_phone() == ""
    assert not Identity.objects.filter(member=member).exists()
    assert not ServiceNote.objects.filter(member=member).exists()
    assert not MemberTag.objects.filter(member=member).exists()
    assert not InboxMessage.objects.filter(member=member).exists()
    # Bookkeeping stays, attached to the anonymous record.
    assert Order.objects.filter(member=member, external_id="PRIV-1").exists()
    assert LedgerEntry.objects.filter(account__member=member, amount=50).exists()
    # Nothing can be sent any more: every purpose withdrawn, every marketing channel out.
    states = consent_states(member=member)
    assert {state.purpose for state in states} == set(ConsentPurpose.values)
    assert all(state.granted is False and not state.effective for state in states)
    assert MarketingOptOut.objects.filter(member=member).count() >= 3
    # No copy of the personal data is left in the audit trail or the action log.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_auditevent WHERE (old::text || new::text) LIKE ANY(%s)",
            [["%隐私测试%", f"%{phone[-8:]}%", "%静安区%", "%tb-privacy-1%"]],
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM core_auditevent WHERE data::text LIKE '%隐私测试%'")
        assert cursor.fetchone()[0] == 0
    erase = AuditEvent.objects.get(action=AuditAction.ERASE)
    assert (erase.member_id, erase.actor_label) == (member.pk, "hq_admin")
    assert erase.new is not None and erase.new["deleted"] > 0
    assert "隐私测试" not in json.dumps(erase.new, ensure_ascii=False)
    # Twice is refused with a clear message, changing nothing.
    again = client.post(
        f"/hq/members/{member.pk}/privacy/erase/", {"confirm": str(member.pk)}, follow=True
    )
    assert "已删除" in again.content.decode() or "already erased" in again.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.ERASE).count() == 1


def test_erasure_covers_merged_members_and_blocks_merging_and_undo(org: Org) -> None:
    member = _rich_member(org)
    twin = MemberFactory(name="隐私双胞胎", home_store=org.a1)
    merge = member_merge(keep=member, drop=twin, actor=org.hq_admin)

    with pytest.raises(MemberError) as refused:
        member_erase(member=Member.all_objects.get(pk=twin.pk), actor=org.hq_admin)
    assert refused.value.code == "member_merged"
    assert Member.all_objects.get(pk=twin.pk).erased_at is None
    assert not AuditEvent.objects.filter(action=AuditAction.ERASE).exists()
    result = member_erase(member=member, actor=org.hq_admin)

    assert result.member_ids == [member.pk, twin.pk]
    erased_twin = Member.all_objects.get(pk=twin.pk)
    assert (erased_twin.name, erased_twin.erased_at is not None) == ("", True)
    merge.refresh_from_db()
    assert "隐私" not in json.dumps([merge.kept_before, merge.dropped_before], ensure_ascii=False)
    with pytest.raises(MemberError) as undo:
        member_merge_undo(merge=MemberMerge.objects.get(pk=merge.pk), actor=org.hq_admin)
    assert undo.value.code == "merge_undo_erased"
    assert Member.all_objects.get(pk=twin.pk).merged_into_id == member.pk
    with pytest.raises(MemberError) as merging:
        member_merge(keep=org.member_a2, drop=member, actor=org.hq_admin)
    assert merging.value.code == "member_erased"
    assert Member.all_objects.get(pk=member.pk).merged_into_id is None
    assert MemberMerge.objects.count() == 1
    assert ActionEvent.objects.filter(action="member.merge_undo").count() == 0


def test_the_request_page_counts_everyone_merged_in_along_a_chain(client: Client, org: Org) -> None:
    """The page says what the archive and the erasure cover: a member merged into someone
    who was then merged into this member counts too."""
    member = _rich_member(org)
    middle = MemberFactory(home_store=org.a1)
    last = MemberFactory(home_store=org.a1)
    member_merge(keep=middle, drop=last, actor=org.hq_admin)
    member_merge(keep=member, drop=middle, actor=org.hq_admin)
    client.cookies["scrm_language"] = "en"
    page = _sign_in(client, org.hq_operator).get(f"/hq/members/{member.pk}/privacy/")
    assert "including the 2 members merged into them" in page.content.decode()
