"""Reply keywords: the SMS provider pushes a member's TD / 退订 … to /hooks/sms/inbound,
signed; marketing by SMS is withdrawn for the member holding the number, and the next
SMS broadcast suppresses them. Forged or malformed pushes write nothing."""

from __future__ import annotations

import json
import logging
import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from campaigns.models import ConsentEntry, Delivery, MarketingOptOut, SandboxCall
from campaigns.services.sending import broadcast_dispatch, delivery_key
from campaigns.services.sms_replies import (
    MAX_BODY_BYTES,
    MAX_REPLIES_PER_PUSH,
    SIGNATURE_HEADER,
    inbound_signature,
    reply_is_stop,
)
from tests.campaigns.test_sending import planned_broadcast
from tests.conftest import Org, wait_for
from tests.members.factories import phone_identity

URL = "/hooks/sms/inbound"
WANG_PHONE = "+8613800001234"


def push(client: Client, replies: list[dict], *, signature: str | None = None, body=None):
    raw = body if body is not None else json.dumps(replies, ensure_ascii=False).encode()
    headers = {} if signature == "" else {SIGNATURE_HEADER: signature or inbound_signature(raw)}
    return client.post(URL, raw, content_type="application/json", headers=headers)


def reply(text: str, phone: str = "13800001234") -> dict:
    return {
        "phone_number": phone,
        "content": text,
        "send_time": "2026-12-01 10:00:00",
        "sequence_id": 1,
    }


def written() -> tuple[list[tuple], list[tuple]]:
    return (
        list(ConsentEntry.objects.values_list("member_id", "purpose", "granted", "source")),
        list(MarketingOptOut.objects.values_list("member_id", "channel")),
    )


@pytest.fixture
def wang(org: Org):
    phone_identity(org.member_of_guide_a1, WANG_PHONE)
    return org.member_of_guide_a1


@pytest.mark.parametrize(
    "text", ["TD", "td", " T D ", "ｔｄ", "T", "n", "R", "退订", "退 订。", "取消", "拒收", "TD!"]
)
def test_stop_keywords_in_any_case_spacing_or_width(text: str) -> None:
    assert reply_is_stop(text) is True


@pytest.mark.parametrize("text", ["", "好的", "TD please", "不要退订", "TDD", "谢谢 N 次"])
def test_other_texts_are_not_stop(text: str) -> None:
    assert reply_is_stop(text) is False


@pytest.mark.django_db
def test_a_signed_td_withdraws_sms_marketing_with_its_proof(client: Client, wang) -> None:
    response = push(client, [reply("退订")])
    assert response.status_code == 200
    assert response.json() == {"code": 0, "msg": "成功", "withdrawn": 1}
    entry = ConsentEntry.objects.get()
    assert (entry.member_id, entry.purpose, entry.granted) == (wang.pk, "marketing_sms", False)
    assert (entry.source, entry.channel, entry.wording_version) == ("sms_reply", "sms", "2026-11")
    assert list(MarketingOptOut.objects.values_list("member_id", "channel")) == [(wang.pk, "sms")]


def test_finding_who_replied_changes_nothing_else_and_sees_a_number_kept_on_the_member(
    client: Client, org: Org
) -> None:
    """The lookup reads only (no phone copied, no lifecycle stage recomputed), and a
    member whose number is kept on the record alone is found too."""
    from members.models import Identity, LifecycleChange
    from tests.members.factories import MemberFactory

    member = MemberFactory(phone="+8613800005678", member_since=None)
    response = push(client, [reply("TD", phone="13800005678")])
    assert response.json()["withdrawn"] == 1
    assert ConsentEntry.objects.get().member_id == member.pk
    assert not Identity.objects.filter(member=member).exists()
    assert not LifecycleChange.objects.filter(member=member).exists()


@pytest.mark.django_db
def test_a_repeated_push_adds_no_second_entry(client: Client, wang) -> None:
    push(client, [reply("TD")])
    assert push(client, [reply("td", phone="+86 138 0000 1234")]).json()["withdrawn"] == 0
    assert ConsentEntry.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("signature", ["", "0" * 64, "not-hex"])
def test_unsigned_or_forged_pushes_are_403_and_write_nothing(
    client: Client, wang, signature: str
) -> None:
    response = push(client, [reply("TD")], signature=signature)
    assert response.status_code == 403
    assert response.json()["code"] == "signature_invalid"
    assert written() == ([], [])


@pytest.mark.django_db
def test_a_signature_of_another_body_is_403(client: Client, wang) -> None:
    other = inbound_signature(json.dumps([reply("好的")]).encode())
    assert push(client, [reply("TD")], signature=other).status_code == 403
    assert written() == ([], [])


@pytest.mark.django_db
@override_settings(SMS_INBOUND_SECRET="agreed-with-the-provider")
def test_the_configured_secret_signs_pushes(client: Client, wang) -> None:
    body = json.dumps([reply("TD")]).encode()
    sandbox = inbound_signature(body, secret=b"something else")
    assert push(client, [], body=body, signature=sandbox).status_code == 403
    assert written() == ([], [])
    good = inbound_signature(body, secret=b"agreed-with-the-provider")
    assert push(client, [], body=body, signature=good).status_code == 200
    assert ConsentEntry.objects.filter(member=wang).count() == 1


@pytest.mark.django_db
@override_settings(
    ALIYUN_SMS_ACCESS_KEY_ID="key",
    ALIYUN_SMS_ACCESS_KEY_SECRET="secret",
    ALIYUN_SMS_SIGN_NAME="品牌",
    ALIYUN_SMS_TEMPLATE_CODE="SMS_1",
)
def test_a_real_provider_without_a_secret_accepts_no_push(client: Client, wang) -> None:
    body = json.dumps([reply("TD")]).encode()
    assert inbound_signature(body) == inbound_signature(body, secret=b"")
    assert push(client, [], body=body).status_code == 403
    assert written() == ([], [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "body_not_json"),
        (b'{"phone_number": "13800001234", "content": "TD"}', "body_not_list"),
        (json.dumps([{"content": "TD"}]).encode(), "reply_invalid"),
        (json.dumps([reply("TD"), {"phone_number": "1", "content": 5}]).encode(), "reply_invalid"),
    ],
)
def test_malformed_pushes_are_400_and_write_nothing(
    client: Client, wang, body: bytes, code: str
) -> None:
    response = push(client, [], body=body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert written() == ([], [])


def test_a_push_over_the_reply_limit_is_400_and_writes_nothing(client: Client, wang) -> None:
    replies = [reply("TD")] * (MAX_REPLIES_PER_PUSH + 1)
    response = push(client, replies)
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_replies"
    assert written() == ([], [])


def test_an_oversized_body_is_413_and_writes_nothing(client: Client, wang) -> None:
    # Valid replies, padded past the limit with white space JSON allows.
    raw = json.dumps([reply("TD")]).encode() + b" " * MAX_BODY_BYTES
    response = push(client, [], body=raw)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert written() == ([], [])


@pytest.mark.parametrize("length", ["lots", "-5"])
def test_an_unreadable_length_is_413_and_writes_nothing(client: Client, wang, length: str) -> None:
    raw = json.dumps([reply("TD")]).encode()
    response = client.post(
        URL,
        raw,
        content_type="application/json",
        headers={SIGNATURE_HEADER: inbound_signature(raw)},
        CONTENT_LENGTH=length,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert written() == ([], [])


@pytest.mark.django_db
def test_only_a_post_is_answered(client: Client) -> None:
    assert client.get(URL).status_code == 405


@pytest.mark.django_db
def test_an_unknown_number_is_200_writes_nothing_and_is_logged_masked(
    client: Client, wang, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="campaigns.services.sms_replies"):
        response = push(client, [reply("TD", phone="13912345678"), reply("TD", phone="42")])
    assert (response.status_code, response.json()["withdrawn"]) == (200, 0)
    assert written() == ([], [])
    assert "*******5678" in caplog.text
    assert "13912345678" not in caplog.text


@pytest.mark.django_db
def test_other_texts_are_ignored(client: Client, wang) -> None:
    response = push(client, [reply("好的，谢谢"), reply("什么时候到货？")])
    assert (response.status_code, response.json()["withdrawn"]) == (200, 0)
    assert written() == ([], [])


@pytest.mark.django_db
def test_the_member_merged_into_another_is_found_where_they_went(client: Client, org: Org) -> None:
    from members.services.merge import member_merge

    kept, dropped = org.member_a1_unassigned, org.member_of_guide_a1
    phone_identity(dropped, WANG_PHONE)
    member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    push(client, [reply("TD")])
    assert written() == ([(kept.pk, "marketing_sms", False, "sms_reply")], [(kept.pk, "sms")])


@pytest.mark.django_db
def test_the_sandbox_command_simulates_a_reply(wang) -> None:
    out = StringIO()
    call_command("sandbox_sms_reply", phone="13800001234", text="退订", stdout=out)
    assert out.getvalue().strip() == "withdrawn: 1"
    assert written() == ([(wang.pk, "marketing_sms", False, "sms_reply")], [(wang.pk, "sms")])


@pytest.mark.django_db
@override_settings(
    ALIYUN_SMS_ACCESS_KEY_ID="key",
    ALIYUN_SMS_ACCESS_KEY_SECRET="secret",
    ALIYUN_SMS_SIGN_NAME="品牌",
    ALIYUN_SMS_TEMPLATE_CODE="SMS_1",
)
def test_the_sandbox_command_refuses_when_pushes_cannot_be_signed(wang) -> None:
    with pytest.raises(CommandError, match="SMS_INBOUND_SECRET"):
        call_command("sandbox_sms_reply", phone="13800001234", text="TD")
    assert written() == ([], [])


@pytest.mark.django_db(transaction=True)
def test_a_later_sms_broadcast_suppresses_the_member_on_a_real_worker(
    client: Client, org: Org, wang, celery_worker: subprocess.Popen[str]
) -> None:
    assert push(client, [reply("TD")]).status_code == 200
    broadcast = planned_broadcast(org)  # by SMS, to everyone
    broadcast_dispatch(broadcast_id=broadcast.pk)
    wait_for(
        lambda: not Delivery.objects.filter(broadcast=broadcast, status="planned").exists(),
        timeout=60,
    )
    row = Delivery.objects.get(broadcast=broadcast, member=wang)
    assert (row.status, row.reason) == ("suppressed", "opted_out")
    assert not SandboxCall.objects.filter(key=delivery_key(broadcast.pk, wang.pk)).exists()
    others = Delivery.objects.filter(broadcast=broadcast).exclude(member=wang)
    assert others.count() == 4
    assert set(others.values_list("status", flat=True)) == {"sent"}
