"""Every role × every URL the project serves, as declared in `tests/access_matrix.py`.

One organisation is built per module (in a transaction rolled back at the end) and every
request runs in its own savepoint, so the ~1,500 checks stay fast."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.http import urlencode

from tests.access_matrix import ADMIN_CHANGELISTS, MATRIX, ROLES, STORE_SCOPED_ROLES, Entry
from tests.conftest import Org, build_org

# Named URLs the matrix leaves to a rule instead of listing them (see access_matrix.py).
ADMIN_INTERNAL_NAMES = frozenset(
    {
        "admin:index",
        "admin:login",
        "admin:logout",
        "admin:password_change",
        "admin:password_change_done",
        "admin:autocomplete",
        "admin:jsi18n",
        "admin:view_on_site",
        "admin:app_list",
    }
)
ADMIN_OBJECT_SUFFIXES = ("_add", "_change", "_delete", "_history")
SIGN_IN_PREFIXES = ("/login/", "/hq/login/", "/m/login/", "/admin/login/")
WRITES = ("INSERT", "UPDATE", "DELETE")
# Bookkeeping a refused request may write without having acted: the session and sign-in log.
BOOKKEEPING_TABLES = ('"django_session"', '"axes_')


def url_names(patterns: list[Any], namespace: str = "") -> Iterator[tuple[str | None, str]]:
    """(namespace:name or None, route) for every pattern, included ones too."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            yield (f"{namespace}{pattern.name}" if pattern.name else None, str(pattern.pattern))


def rule_grouped(name: str) -> bool:
    if name in ADMIN_INTERNAL_NAMES:
        return True
    return name.startswith("admin:") and name.endswith(ADMIN_OBJECT_SUFFIXES)


def test_every_url_has_a_matrix_entry_and_every_entry_a_url() -> None:
    served = {name for name, _ in url_names(get_resolver().url_patterns) if name}
    missing = sorted(name for name in served - set(MATRIX) if not rule_grouped(name))
    stale = sorted(set(MATRIX) - served)
    assert missing == [], f"URLs without an access-matrix entry: {missing}"
    assert stale == [], f"access-matrix entries for URLs that no longer exist: {stale}"
    unnamed = [route for name, route in url_names(get_resolver().url_patterns) if not name]
    # Only the admin's own redirects and catch-all go unnamed; a page of ours needs a name.
    assert all(route.startswith(("<path:object_id>/", "(?P<url>")) for route in unnamed), unnamed


def test_the_admin_changelists_listed_are_the_registered_models() -> None:
    registered = {f"{m._meta.app_label}_{m._meta.model_name}" for m in admin.site._registry}
    assert sorted(ADMIN_CHANGELISTS) == sorted(registered)


# --- the organisation every role opens the URLs in --------------------------------------------


@dataclass
class World:
    org: Org
    users: dict[str, Any]
    own: dict[str, dict[str, Any]]  # role -> object key -> object of the role's own store
    other: dict[str, Any]  # object key -> the matching object of store b1 (other region)
    leaks: dict[str, list[str]]  # role -> text that must never reach that role


def build_world() -> World:
    from campaigns.models import Broadcast, Campaign, GuideSendTask, Material
    from members.models import (
        CouponTemplate,
        FollowUpTask,
        MemberMerge,
        Segment,
        Tier,
    )
    from members.models.tags import AutoTagRule
    from members.services.coupons import coupon_issue
    from members.services.identity import merge_suggestion_raise
    from scrm.core.services import audit_record
    from tests.members.factories import MemberFactory, TagFactory
    from touchpoints.models import (
        Channel,
        EventClient,
        ImportJob,
        ImportMapping,
        QrCode,
        Ticket,
        Touchpoint,
        TouchpointAlert,
    )

    org = build_org()
    superuser = type(org.hq_admin).objects.create_superuser("root", "root@example.com", "x")
    staff_manager = type(org.hq_admin).objects.create_user(
        "staff_manager_a1", role="store_manager", is_staff=True, display_name="店长甲"
    )
    staff_manager.stores.add(org.a1)
    staff_manager.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    everyone = {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]}
    now = timezone.now()
    channel = Channel.objects.create(kind="wecom", name="企业微信", code="wecom")
    material = Material.objects.create(kind="text", title="会员日", body="{name}，会员日快乐")
    tag = TagFactory(name="爱口红")

    def store_objects(
        store: Any, guide: Any, member: Any, uploader: Any, label: str
    ) -> dict[str, Any]:
        segment = Segment.objects.create(name=f"{label}人群", rules=everyone, store=store)
        uploaded = Segment.objects.create(
            name=f"{label}上传", rules=everyone, store=store, kind="static", created_by=uploader
        )
        counts = dict.fromkeys(
            ("rows_read", "matched", "duplicates", "not_found", "invalid", "members"), 0
        )
        audit_record(
            actor=uploader,
            action="segment.create",
            target=uploaded,
            data={"source": "upload", "file": "list.csv", "column": "phone", **counts},
        )
        broadcast = Broadcast.objects.create(
            name=f"{label}群发",
            channel="inbox",
            material=material,
            segment=segment,
            store=store,
            created_by=org.hq_operator,
        )
        touchpoint = Touchpoint.objects.create(
            channel=channel,
            kind="qr_code",
            name=f"{label}活码",
            code=f"qr-{store.code}",
            store=store,
        )
        return {
            "member": member,
            "guide": guide,
            "store": store,
            "segment": segment,
            "uploaded_segment": uploaded,
            "broadcast": broadcast,
            "campaign": Campaign.objects.create(
                name=f"{label}旅程",
                template="welcome",
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=30),
                created_by=org.hq_operator,
                trigger="registered",
                store=store,
            ),
            "touchpoint": touchpoint,
            "qr": QrCode.objects.create(touchpoint=touchpoint),
            "alert": TouchpointAlert.objects.create(
                touchpoint=touchpoint,
                kind="inflow_drop",
                day=timezone.localdate(),
                value=1,
                baseline=10,
            ),
            "ticket": Ticket.objects.create(
                member=member, store=store, source="review", subject=f"{label}差评", due_at=now
            ),
            "followup": FollowUpTask.objects.create(
                member=member, guide=guide, kind="hq", title=f"{label}回访", due_on=now.date()
            ),
            "send_task": GuideSendTask.objects.create(
                broadcast=broadcast, guide=guide, recipients=1, handed_at=now
            ),
            "material": Material.objects.create(
                kind="text", title=f"{label}素材", body="{name}，您好", store=store
            ),
        }

    own = store_objects(org.a1, org.guide_a1, org.member_of_guide_a1, org.store_manager_a1, "上海")
    other = store_objects(org.b1, org.guide_b1, org.member_b1, org.hq_operator, "北京B1专属")
    twin = MemberFactory(name="王小美", home_store=org.a1)
    template = CouponTemplate.objects.create(name="10元券", kind="amount_off", amount_off=10)
    head_office = {
        "tag": tag,
        "auto_rule": AutoTagRule.objects.create(name="口红", tag=tag, rules=everyone),
        "suggestion": merge_suggestion_raise(
            first=org.member_of_guide_a1, second=twin, reason="same name", evidence=[]
        ),
        "merge": MemberMerge.objects.create(
            kept=org.member_a1_unassigned,
            dropped=MemberFactory(home_store=org.a1),
            merged_by=org.hq_admin,
        ),
        "coupon": coupon_issue(
            template=template, member_id=org.member_of_guide_a1.pk, source="hq", source_ref="m"
        ),
        "tier": Tier.objects.create(name="金卡", rank=1, threshold=100),
        "channel": channel,
        "event_client": EventClient.objects.create(
            name="小程序", channel=channel, key_hash="x" * 64, key_hint="ab12"
        ),
        "import_job": ImportJob.objects.create(
            kind="members",
            source="tmall",
            file="imports/m.csv",
            original_name="m.csv",
            created_by=org.hq_operator,
        ),
        "mapping": ImportMapping.objects.order_by("pk").first(),
        "qr_token": own["qr"].token,
        "link_token": "no-such-link",
        "any": 1,
    }
    own.update(head_office)
    other.update(head_office)
    users = {
        "anonymous": None,
        "hq_admin": org.hq_admin,
        "hq_operator": org.hq_operator,
        "region_manager": org.region_manager_a,
        "store_manager": org.store_manager_a1,
        "guide": org.guide_a1,
        "superuser": superuser,
        "staff_store_manager": staff_manager,
    }
    region_b = ["北京三里屯店", org.member_b1.name, "B1专属", str(org.guide_b1), "guide_b1"]
    store_a2 = [org.a2.name, org.member_a2.name]
    colleague = [org.member_of_guide_a1_other.name]
    return World(
        org=org,
        users=users,
        own=dict.fromkeys(ROLES, own),
        other=other,
        leaks={
            "region_manager": region_b,
            "store_manager": region_b + store_a2,
            "staff_store_manager": region_b + store_a2,
            "guide": region_b + store_a2 + colleague,
        },
    )


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


# --- checking one role at one URL ---------------------------------------------------------------


def outcome(response: HttpResponse) -> str:
    status = response.status_code
    if status in (301, 302):
        location = response["Location"]
        return "login" if location.startswith(SIGN_IN_PREFIXES) else "redirect"
    return {
        200: "ok",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "not_allowed",
    }.get(status, f"status {status}")


def url_for(name: str, entry: Entry, objects: dict[str, Any]) -> str:
    def ids(names: Mapping[str, str]) -> dict[str, Any]:
        return {arg: getattr(objects[key], "pk", objects[key]) for arg, key in names.items()}

    url = reverse(name, kwargs={**entry.fixed, **ids(entry.args)})
    return f"{url}?{urlencode(ids(entry.query))}" if entry.query else url


def writes_during(client: Client, method: str, url: str) -> tuple[HttpResponse, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(url)
    written = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(WRITES)
        and not any(table in q["sql"] for table in BOOKKEEPING_TABLES)
    ]
    return response, written


def body_of(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")  # type: ignore[attr-defined]
    return response.content.decode(errors="replace")


def assert_nothing_leaks(world: World, role: str, url: str, response: HttpResponse) -> None:
    body = body_of(response)
    shown = [text for text in world.leaks.get(role, []) if text in body]
    assert shown == [], f"{role} at {url} sees another store's {shown}"


CASES = [(role, name) for name in MATRIX for role in ROLES]


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "name"), CASES, ids=[f"{r}-{n}" for r, n in CASES])
def test_role_at_url(world: World, role: str, name: str) -> None:
    entry = MATRIX[name]
    expected = entry.access[role]
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    url = url_for(name, entry, world.own[role])
    other_url = url_for(name, entry, world.other) if entry.args else url
    allowed = expected == "ok"
    if entry.method == "POST":
        if allowed:  # posting would act: a GET shows the URL is there and POST-only
            assert outcome(client.get(url)) == "not_allowed", f"GET {url}"
            if entry.scoped and role in STORE_SCOPED_ROLES:
                response, written = writes_during(client, "post", other_url)
                assert outcome(response) == "not_found", f"POST {other_url}"
                assert written == [], f"{role} wrote to another store's object: {written}"
        else:
            response, written = writes_during(client, "post", url)
            assert outcome(response) == expected, f"POST {url}"
            assert written == [], f"{role} was refused at {url} but wrote {written}"
        return

    page_response = client.get(url)
    assert outcome(page_response) == expected, f"GET {url}"
    if not allowed:
        return
    assert_nothing_leaks(world, role, url, page_response)
    if entry.export:
        download = client.get(url, {"format": "csv", "table": entry.table})
        assert (download.status_code, download["Content-Type"][:8]) == (200, "text/csv"), url
        assert_nothing_leaks(world, role, f"{url}?format=csv", download)
    if entry.scoped and role in STORE_SCOPED_ROLES:
        assert outcome(client.get(other_url)) == "not_found", f"GET {other_url}"
