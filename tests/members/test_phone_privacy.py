"""Phone numbers at rest and on show: digests and sealed copies in the database, masked on
every page, file and log line, and shown in full only through the audited unmask."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse

from campaigns.gateways import Outgoing, SendResult
from members.models import Identity, IdentityKind, Member, MergeSuggestion
from members.selectors import member_list
from members.services.identity import identity_key, member_resolve
from scrm.audit.models import AuditAction, AuditEvent
from scrm.core.logging import MaskPhoneNumbers, mask_phones_in
from scrm.core.pii import open_phone, phone_digest, seal_phone
from tests.conftest import Org
from tests.members.factories import MemberFactory, by_phone, phone_identity
from tests.touchpoints.files import csv_bytes, upload
from touchpoints.imports.jobs import import_job_create, import_job_run

pytestmark = pytest.mark.django_db

PHONE = "+8613812341234"
DIGITS = "13812341234"


def _table_text(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT string_agg(t::text, '\n') FROM {table} t")  # noqa: S608
        return cursor.fetchone()[0] or ""


def _import_members(rows: list[list[str]]) -> None:
    job = import_job_create(
        upload=upload("members.csv", csv_bytes(rows)),
        kind="members",
        source="generic",
        actor=None,
        enqueue=False,
    )
    assert import_job_run(job.pk, worker="test") is not None


def _grant_full_phone(user: object) -> None:
    user.user_permissions.add(Permission.objects.get(codename="view_full_phone"))  # type: ignore[attr-defined]


# --- keys ------------------------------------------------------------------------------------


def test_a_digest_is_keyed_and_stable_and_a_seal_opens_only_untampered() -> None:
    assert phone_digest(PHONE) == phone_digest(PHONE)
    assert len(phone_digest(PHONE)) == 64 and DIGITS not in phone_digest(PHONE)
    assert phone_digest(PHONE) != phone_digest("+8613812341235")
    first, second = seal_phone(PHONE), seal_phone(PHONE)
    assert first != second  # a fresh nonce each time: equal numbers do not look equal
    assert DIGITS.encode() not in first
    assert open_phone(first) == PHONE and open_phone(memoryview(second)) == PHONE
    tampered = first[:-1] + bytes([first[-1] ^ 1])
    with pytest.raises(InvalidTag):
        open_phone(tampered)


# --- at rest ---------------------------------------------------------------------------------


def test_the_database_holds_no_plain_phone_whichever_way_it_arrived(org: Org) -> None:
    # The identity service (sign-in, events), an import file, a conflict's suggestion.
    member_resolve(identities=[identity_key("phone", "138 1234 1234")], source="pos")
    _import_members([["手机号", "姓名"], ["13812341234", "林小雨"], ["+86 139 0000 5678", "陈杰"]])
    holder = MemberFactory(phone="+8613700009999")
    phone_identity(holder)
    union = MemberFactory(phone="")
    Identity.objects.create(member=union, kind=IdentityKind.UNIONID, value="oU-x")
    conflict = member_resolve(
        identities=[identity_key("unionid", "oU-x"), identity_key("phone", "13700009999")],
        source="mini_program",
    )
    assert conflict.member is None
    [suggestion] = MergeSuggestion.objects.all()
    assert {
        "kind": "phone",
        "app": "",
        "value": phone_digest("+8613700009999"),
        "hint": "9999",
    } in (suggestion.evidence)

    member = Member.objects.get(**by_phone(PHONE))
    assert member.name == "林小雨" and member.phone_last4 == "1234"
    assert member.reveal_phone() == PHONE
    assert Identity.objects.get(kind=IdentityKind.PHONE, value=phone_digest(PHONE)).hint == "1234"
    for table in ("members_member", "members_identity", "members_mergesuggestion"):
        text = _table_text(table)
        for number in (DIGITS, PHONE, "13900005678", "13700009999"):
            assert number not in text, (table, number)


def test_importing_the_same_phone_twice_makes_one_member() -> None:
    _import_members([["手机号", "姓名"], ["138-1234-1234", "林小雨"]])
    _import_members([["手机号", "城市"], ["+86 13812341234", "上海"]])
    member = Member.objects.get()
    assert (member.name, member.city, member.phone_last4) == ("林小雨", "上海", "1234")
    assert member.reveal_phone() == PHONE
    assert Identity.objects.filter(kind=IdentityKind.PHONE).count() == 1


def test_an_import_fills_a_known_members_missing_phone_and_keeps_an_existing_one() -> None:
    blank = MemberFactory(phone="", name="无号")
    Identity.objects.create(member=blank, kind=IdentityKind.TMALL, value="tb-blank")
    kept = MemberFactory(phone="+8613600001111", name="有号")
    phone_identity(kept)
    Identity.objects.create(member=kept, kind=IdentityKind.TMALL, value="tb-kept")
    _import_members(
        [["手机号", "天猫买家ID"], ["13812341234", "tb-blank"], ["13600001111", "tb-kept"]]
    )
    blank.refresh_from_db()
    kept.refresh_from_db()
    assert blank.reveal_phone() == PHONE and blank.phone_last4 == "1234"
    assert kept.reveal_phone() == "+8613600001111"


# --- lookups ---------------------------------------------------------------------------------


def test_hq_finds_a_member_by_full_number_or_last_four_within_scope(org: Org) -> None:
    member = org.member_of_guide_a1  # +8613800001234
    phone_identity(member)
    far = MemberFactory(home_store=org.b1, phone="+8613999991234")
    for search in ("138 0000 1234", "+86 13800001234", "0086-138-0000-1234"):
        assert list(member_list(user=org.hq_operator, search=search)) == [member]
    assert set(member_list(user=org.hq_operator, search="1234")) == {member, far}
    # A store manager's last-four search stays in their stores.
    assert list(member_list(user=org.store_manager_a1, search="1234")) == [member]
    assert list(member_list(user=org.store_manager_a1, search="13999991234")) == []


def test_the_guides_search_finds_only_their_own_customers(client: Client, org: Org) -> None:
    MemberFactory(home_store=org.a1, guide=org.guide_a1_other, phone="+8613900001234", name="别人")
    client.force_login(org.guide_a1)
    for search in ("1234", "13800001234"):
        page = client.get("/m/", {"q": search})
        members = list(page.context["page"])
        assert members == [org.member_of_guide_a1]
        body = page.content.decode()
        assert "*******1234" in body
        # The number shows only as what the guide typed: the search box and its links.
        echoes = re.findall(r'(value="|q=)?13800001234', body)
        assert all(echoes), echoes


# --- masked by default -------------------------------------------------------------------------


def test_pages_files_and_staff_json_are_masked_even_with_the_permission(
    client: Client, org: Org
) -> None:
    member = org.member_of_guide_a1
    phone_identity(member)
    _grant_full_phone(org.hq_operator)
    client.force_login(org.hq_operator)
    answers = [
        client.get("/hq/members/"),
        client.get(f"/hq/members/{member.pk}/"),
        client.get("/hq/members/", {"format": "csv"}),
        client.get(f"/hq/members/{member.pk}/", {"table": "identities", "format": "csv"}),
        client.post(
            "/hq/segments/count/",
            json.dumps(
                {
                    "rules": {
                        "op": "and",
                        "rules": [{"field": "gender", "operator": "in", "value": ["f"]}],
                    }
                }
            ),
            content_type="application/json",
        ),
    ]
    for answer in answers:
        assert answer.status_code == 200
        text = answer.content.decode("utf-8-sig")
        assert "*******1234" in text
        assert "13800001234" not in text
    rows = list(csv.DictReader(io.StringIO(answers[2].content.decode("utf-8-sig"))))
    assert {row["phone"] for row in rows if row["name"] == "王小美"} == {"*******1234"}
    assert not AuditEvent.objects.filter(action=AuditAction.UNMASK).exists()


def test_the_guides_card_is_masked_and_offers_the_button_only_with_the_permission(
    client: Client, org: Org
) -> None:
    url = reverse("mobile:customer", args=[org.member_of_guide_a1.pk])
    client.force_login(org.guide_a1)
    body = client.get(url).content.decode()
    assert "*******1234" in body and "13800001234" not in body
    assert "reveal-phone" not in body and "tel:" not in body
    _grant_full_phone(org.guide_a1)
    body = client.get(url).content.decode()
    assert "13800001234" not in body and 'data-testid="reveal-phone"' in body


# --- unmask ----------------------------------------------------------------------------------


def _unmask_events() -> list[tuple[object, ...]]:
    return list(
        AuditEvent.objects.filter(action=AuditAction.UNMASK).values_list(
            "actor_id", "member_id", "table", "row_id", "new", "origin"
        )
    )


def test_hq_unmask_shows_the_number_once_and_records_it(client: Client, org: Org) -> None:
    member = org.member_of_guide_a1
    _grant_full_phone(org.hq_operator)
    client.force_login(org.hq_operator)
    url = reverse("hq:member-phone-reveal", args=[member.pk])
    response = client.post(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert "+8613800001234" in body and 'data-testid="reveal-phone"' not in body
    assert _unmask_events() == [
        (org.hq_operator.pk, member.pk, "members_member", str(member.pk), {"field": "phone"}, url)
    ]
    # The profile itself stays masked afterwards.
    assert "13800001234" not in client.get(f"/hq/members/{member.pk}/").content.decode()


def test_the_guides_unmask_gives_tap_to_call_and_records_it(client: Client, org: Org) -> None:
    member = org.member_of_guide_a1
    _grant_full_phone(org.guide_a1)
    client.force_login(org.guide_a1)
    url = reverse("mobile:customer-phone-reveal", args=[member.pk])
    body = client.post(url).content.decode()
    assert 'href="tel:+8613800001234"' in body
    assert _unmask_events() == [
        (org.guide_a1.pk, member.pk, "members_member", str(member.pk), {"field": "phone"}, url)
    ]


@pytest.mark.parametrize("where", ["hq", "mobile"])
def test_unmask_is_refused_and_records_nothing_without_the_permission_or_outside_scope(
    client: Client, org: Org, where: str
) -> None:
    name = "hq:member-phone-reveal" if where == "hq" else "mobile:customer-phone-reveal"
    user = org.store_manager_a1 if where == "hq" else org.guide_a1
    own = org.member_of_guide_a1
    client.force_login(user)
    # Without the permission: 403.
    response = client.post(reverse(name, args=[own.pk]))
    assert response.status_code == 403
    assert "13800001234" not in response.content.decode()
    _grant_full_phone(user)
    # Another store's member (or another guide's customer), or nobody: 404.
    others = [org.member_b1.pk, 999_999]
    if where == "mobile":
        others.append(org.member_of_guide_a1_other.pk)
    for member_id in others:
        assert client.post(reverse(name, args=[member_id])).status_code == 404
    # Only POST.
    assert client.get(reverse(name, args=[own.pk])).status_code == 405
    assert _unmask_events() == []


def test_unmask_needs_the_csrf_token(org: Org) -> None:
    _grant_full_phone(org.hq_operator)
    client = Client(enforce_csrf_checks=True)
    client.force_login(org.hq_operator)
    url = reverse("hq:member-phone-reveal", args=[org.member_of_guide_a1.pk])
    assert client.post(url).status_code == 403
    assert _unmask_events() == []
    page = client.get(f"/hq/members/{org.member_of_guide_a1.pk}/")
    token = page.cookies["csrftoken"].value
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 200
    assert len(_unmask_events()) == 1


def test_unmask_of_a_member_without_a_phone_records_nothing(client: Client, org: Org) -> None:
    member = MemberFactory(home_store=org.a1, phone="")
    _grant_full_phone(org.hq_operator)
    client.force_login(org.hq_operator)
    response = client.post(reverse("hq:member-phone-reveal", args=[member.pk]))
    assert response.status_code == 200
    assert _unmask_events() == []


# --- sending ---------------------------------------------------------------------------------


def test_sms_opens_the_sealed_number_at_send_time_and_logs_none_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from campaigns import sms

    sent: list[list[str]] = []

    class RecordingClient:
        cache_prefix = "test:sms"

        def send_batch_sms(self, *, phones: list[str], **kwargs: object) -> str:
            sent.append(phones)
            return "biz-1"

    member = MemberFactory(phone=PHONE)
    gateway = sms.SmsGateway(
        RecordingClient(),  # type: ignore[arg-type]
        sign_name="品牌",
        template_code="SMS_1",
        cache_is_shared=True,
    )
    with caplog.at_level(logging.INFO):
        results = gateway.send_batch([Outgoing(f"b1:m{member.pk}", member.pk, "你好")])
    assert results == [SendResult("sent", ref="biz-1")]
    assert sent == [[DIGITS]]  # Aliyun takes the 11 digits
    assert DIGITS not in caplog.text  # nothing on the way logged it (the filter aside)


# --- logs ------------------------------------------------------------------------------------


def _render(record: logging.LogRecord) -> str:
    MaskPhoneNumbers().filter(record)
    return logging.Formatter("%(message)s").format(record)


def test_the_log_filter_masks_numbers_in_messages_arguments_and_tracebacks() -> None:
    def record(msg: str, args: object = None) -> logging.LogRecord:
        return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)  # type: ignore[arg-type]

    assert _render(record(f"bound {PHONE}")) == "bound *******1234"
    assert _render(record("to %s and %s", (DIGITS, "8613900005678"))) == (
        "to *******1234 and *******5678"
    )
    assert _render(record("%(who)s", ({"who": ["+14155550123"]},))) == "['*******0123']"
    assert _render(record("member %d", (13812341234,))) == "member *******1234"
    # Order numbers, ids and timestamps are longer runs of digits: left alone.
    assert _render(record("order 2026120713812341234 id 12345")) == (
        "order 2026120713812341234 id 12345"
    )
    try:
        raise ValueError(f"bad {PHONE}")
    except ValueError:
        failed = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    text = _render(failed)
    assert "*******1234" in text and PHONE not in text
    assert mask_phones_in("no numbers here") == "no numbers here"


def test_every_configured_handler_masks_phones() -> None:
    # The test settings' phone sweep (tests/phone_sweep.py) reads records unmasked on
    # purpose, to catch a number logged at all; every handler that writes has the filter.
    handlers = {k: h for k, h in settings.LOGGING["handlers"].items() if k != "phone_sweep"}
    assert handlers and all("mask_phones" in h.get("filters", []) for h in handlers.values())
    root = logging.getLogger()
    stream = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and any(
            isinstance(f, MaskPhoneNumbers) for f in handler.filters
        ):
            original = handler.setStream(stream)
            try:
                logging.getLogger("scrm.test").warning("customer %s called", PHONE)
            finally:
                handler.setStream(original)  # type: ignore[arg-type]
            break
    else:
        pytest.fail("no stream handler with the phone filter")
    assert "customer *******1234 called" in stream.getvalue()
    assert DIGITS not in stream.getvalue()


# --- deployment ------------------------------------------------------------------------------


def test_check_deploy_warns_while_the_pii_key_is_missing_or_short() -> None:
    root = Path(settings.BASE_DIR)
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEBUG", "SECRET_KEY", "DJANGO_", "SCRM_PII_KEY"))
    }
    base.update(
        DJANGO_SETTINGS_MODULE="scrm.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="scrm.example.com",
    )

    def warnings(**env: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--tag", "security"],
            cwd=root,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return result.stdout + result.stderr

    assert "scrm.W001" in warnings()
    assert "scrm.W002" in warnings(SCRM_PII_KEY="short")
    good = warnings(SCRM_PII_KEY=secrets.token_urlsafe(48))
    assert "scrm.W001" not in good and "scrm.W002" not in good
