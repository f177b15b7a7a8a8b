"""HQ pages for tags (step 3) and segments (step 6): management, bulk tagging with a
preview, the member profile's tags, the builder's live-count endpoint, freezing,
exports; refusals change nothing and every page stays within the viewer's scope."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from members.models import (
    MemberTag,
    MemberTagLog,
    Segment,
    SegmentKind,
    SegmentMember,
    SegmentSize,
    Tag,
    TagChoice,
    TagGroup,
)
from members.services.tags import member_tag_add
from scrm.core.models import AuditEvent
from tests.conftest import Org
from tests.members.factories import MemberFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

FEMALE = {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]}


def post_json(client: Client, url: str, payload: object) -> object:
    return client.post(url, json.dumps(payload), content_type="application/json")


# --- tags ------------------------------------------------------------------------------------


def test_hq_creates_groups_and_tags_audited_with_clear_refusals(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    empty = client.get("/hq/tags/")
    assert empty.status_code == 200 and empty.context["groups"] == []
    response = client.post(
        "/hq/tags/group/new/", {"name": "肤质", "choice": "single", "position": 1}
    )
    assert response.status_code == 302
    group = TagGroup.objects.get(name="肤质")
    assert (
        client.post(
            "/hq/tags/tag/new/", {"group": group.pk, "name": "油性", "active": "on"}
        ).status_code
        == 302
    )
    duplicate = client.post("/hq/tags/tag/new/", {"group": group.pk, "name": "油性"})
    assert duplicate.status_code == 200 and Tag.objects.filter(name="油性").count() == 1
    assert duplicate.context["form"].errors["name"]
    assert AuditEvent.objects.filter(action__in=["taggroup.create", "tag.create"]).count() == 2
    page = client.get("/hq/tags/").content.decode()
    assert "肤质" in page and "油性" in page
    assert client.get("/hq/tags/tag/99999/").status_code == 404
    assert client.get("/hq/tags/widget/new/").status_code == 404


def test_store_staff_cannot_manage_tags(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    assert client.get("/hq/tags/").status_code == 403
    assert client.post("/hq/tags/group/new/", {"name": "x", "choice": "single"}).status_code == 403
    assert client.post("/hq/tags/bulk/", {}).status_code == 403
    assert not TagGroup.objects.exists()


def test_profile_tags_add_remove_logged_and_single_choice_replaces(
    client: Client, org: Org
) -> None:
    skin = TagGroupFactory(name="肤质", choice=TagChoice.SINGLE)
    oily, dry = TagFactory(group=skin, name="油性"), TagFactory(group=skin, name="干性")
    member = org.member_a1_unassigned
    client.force_login(org.store_manager_a1)
    profile = client.get(f"/hq/members/{member.pk}/")
    assert profile.status_code == 200 and "油性" in profile.content.decode()
    url = f"/hq/members/{member.pk}/tags/add/"
    assert client.post(url, {"tag": oily.pk}).status_code == 302
    assert client.post(url, {"tag": dry.pk}).status_code == 302
    assert list(MemberTag.objects.filter(member=member).values_list("tag_id", flat=True)) == [
        dry.pk
    ]
    tag = MemberTag.objects.get(member=member)
    assert tag.source == "staff" and tag.added_by == org.store_manager_a1
    log = list(
        MemberTagLog.objects.filter(member=member).order_by("pk").values_list("tag_id", "action")
    )
    assert log == [(oily.pk, "add"), (oily.pk, "remove"), (dry.pk, "add")]
    remove = client.post(f"/hq/members/{member.pk}/tags/{dry.pk}/remove/")
    assert remove.status_code == 302 and not MemberTag.objects.filter(member=member).exists()
    # Removing again, or an unknown tag: 404, nothing logged.
    before = MemberTagLog.objects.count()
    assert client.post(f"/hq/members/{member.pk}/tags/{dry.pk}/remove/").status_code == 404
    assert client.post(url, {"tag": 99999}).status_code == 302
    assert MemberTagLog.objects.count() == before


def test_tagging_another_stores_member_is_404_and_changes_nothing(client: Client, org: Org) -> None:
    tag = TagFactory()
    client.force_login(org.store_manager_a1)
    other = org.member_b1
    assert client.post(f"/hq/members/{other.pk}/tags/add/", {"tag": tag.pk}).status_code == 404
    member_tag_add(member=other, tag=tag)
    assert client.post(f"/hq/members/{other.pk}/tags/{tag.pk}/remove/").status_code == 404
    assert MemberTag.objects.filter(member=other).count() == 1


def test_switched_off_tag_cannot_be_added(client: Client, org: Org) -> None:
    tag = TagFactory(active=False)
    client.force_login(org.hq_operator)
    member = org.member_a2
    client.post(f"/hq/members/{member.pk}/tags/add/", {"tag": tag.pk})
    assert not MemberTag.objects.filter(member=member).exists()


def test_bulk_tag_an_uploaded_list_previews_then_confirms(client: Client, org: Org) -> None:
    tag = TagFactory(name="高潜")
    client.force_login(org.hq_operator)
    known = org.member_of_guide_a1  # phone +8613800001234
    listing = f"手机号\n138 0000 1234\n{org.member_b1.pk}\n12345\nnot-a-phone\n".encode("gbk")
    upload = SimpleUploadedFile("list.csv", listing, content_type="text/csv")
    preview = client.post("/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "upload": upload})
    assert preview.status_code == 200
    assert preview.context["preview"]["members"] == 2
    assert set(preview.context["preview"]["unknown"]) == {"手机号", "12345", "not-a-phone"}
    assert not MemberTag.objects.exists()  # a preview writes nothing
    pasted = preview.context["form"].data["pasted"]
    confirm = client.post(
        "/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "pasted": pasted, "confirm": "yes"}
    )
    assert confirm.status_code == 302
    assert set(MemberTag.objects.values_list("member_id", flat=True)) == {
        known.pk,
        org.member_b1.pk,
    }
    assert AuditEvent.objects.filter(action="tags.bulk_add").count() == 1
    # Again: nothing new.
    client.post(
        "/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "pasted": pasted, "confirm": "yes"}
    )
    assert MemberTag.objects.count() == 2
    removed = client.post(
        "/hq/tags/bulk/", {"tag": tag.pk, "action": "remove", "pasted": pasted, "confirm": "yes"}
    )
    assert removed.status_code == 302 and not MemberTag.objects.exists()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary", "not a text"),
        (b"\xff\xfe\xfa\xfb\x80\x81", "UTF-8"),
    ],
)
def test_bulk_tag_bad_files_change_nothing(
    client: Client, org: Org, content: bytes, error: str
) -> None:
    tag = TagFactory()
    client.force_login(org.hq_operator)
    client.cookies["scrm_language"] = "en"
    upload = SimpleUploadedFile("list.txt", content)
    response = client.post(
        "/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "upload": upload, "confirm": "yes"}
    )
    assert response.status_code == 200
    assert not MemberTag.objects.exists() and not MemberTagLog.objects.exists()
    assert error in " ".join(response.context["form"].errors["upload"])


def test_bulk_tag_needs_exactly_one_source(client: Client, org: Org) -> None:
    tag = TagFactory()
    client.force_login(org.hq_operator)
    neither = client.post("/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "confirm": "yes"})
    assert neither.status_code == 200 and neither.context["form"].non_field_errors()
    segment = Segment.objects.create(name="女性", rules=FEMALE)
    both = client.post(
        "/hq/tags/bulk/",
        {"tag": tag.pk, "action": "add", "segment": segment.pk, "pasted": "1", "confirm": "yes"},
    )
    assert both.status_code == 200 and not MemberTag.objects.exists()


def test_bulk_tag_a_segment(client: Client, org: Org) -> None:
    tag = TagFactory()
    MemberFactory.create_batch(3, gender="m", home_store=org.a1)
    segment = Segment.objects.create(name="女性", rules=FEMALE)
    client.force_login(org.hq_operator)
    response = client.post(
        "/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "segment": segment.pk, "confirm": "yes"}
    )
    assert response.status_code == 302
    from members.models import Member

    women = set(Member.objects.filter(gender="f").values_list("pk", flat=True))
    assert women and set(MemberTag.objects.values_list("member_id", flat=True)) == women


# --- segments --------------------------------------------------------------------------------


def test_live_count_endpoint_counts_samples_and_names_bad_nodes(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    MemberFactory(gender="m", home_store=org.a1)
    ok = post_json(client, "/hq/segments/count/", {"rules": FEMALE})
    body = ok.json()
    from members.models import Member

    assert ok.status_code == 200
    assert body["count"] == Member.objects.filter(gender="f").count()
    assert len(body["sample"]) == min(10, body["count"])
    assert all("****" in row["phone"] for row in body["sample"])  # masked without permission
    bad = post_json(
        client,
        "/hq/segments/count/",
        {"rules": {"op": "and", "rules": [FEMALE, {"field": "agee", "operator": "in"}]}},
    )
    assert bad.status_code == 422 and bad.json()["path"] == "rules[1]"
    assert post_json(client, "/hq/segments/count/", [1, 2]).status_code == 400
    garbage = client.post("/hq/segments/count/", b"{not json", content_type="application/json")
    assert garbage.status_code == 400 and garbage.json()["error"] == "bad_json"
    huge = client.post(
        "/hq/segments/count/", b"{" + b" " * 200_000 + b"}", content_type="application/json"
    )
    assert huge.status_code == 413
    assert client.get("/hq/segments/count/").status_code == 405


def test_store_manager_counts_only_their_stores(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    everyone = {
        "op": "and",
        "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
    }
    body = post_json(client, "/hq/segments/count/", {"rules": everyone}).json()
    from members.models import Member

    assert body["count"] == Member.objects.filter(home_store=org.a1).count()
    other_store = post_json(client, "/hq/segments/count/", {"rules": everyone, "store": org.b1.pk})
    assert other_store.status_code == 422
    named = post_json(
        client,
        "/hq/segments/count/",
        {
            "rules": {
                "op": "and",
                "rules": [{"field": "home_store", "operator": "in", "value": [org.b1.pk]}],
            }
        },
    )
    assert named.status_code == 422 and named.json()["path"] == "rules[0]"


def test_save_a_dynamic_segment_then_freeze_it(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    assert client.get("/hq/segments/").status_code == 200
    assert client.get("/hq/segments/new/").status_code == 200
    data = {
        "name": "上海女性",
        "kind": "dynamic",
        "refresh": "daily",
        "rules": json.dumps(FEMALE),
    }
    response = client.post("/hq/segments/new/", data)
    assert response.status_code == 302
    segment = Segment.objects.get(name="上海女性")
    from members.models import Member

    women = Member.objects.filter(gender="f").count()
    assert segment.size == women and SegmentSize.objects.filter(segment=segment).count() == 1
    detail = client.get(f"/hq/segments/{segment.pk}/")
    assert detail.status_code == 200 and detail.context["page"].paginator.count == women
    frozen = client.post(f"/hq/segments/{segment.pk}/freeze/")
    assert frozen.status_code == 302
    segment.refresh_from_db()
    assert segment.kind == SegmentKind.STATIC and segment.frozen_at is not None
    assert SegmentMember.objects.filter(segment=segment).count() == women
    # A new woman joins: the frozen list stays as it was.
    MemberFactory(gender="f", home_store=org.a1)
    assert client.get(f"/hq/segments/{segment.pk}/").context["page"].paginator.count == women
    assert AuditEvent.objects.filter(action="segment.freeze").count() == 1


def test_invalid_rules_are_refused_naming_the_node(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    bad_tree = {"op": "or", "rules": [FEMALE, {"op": "not", "rules": []}]}
    response = client.post(
        "/hq/segments/new/",
        {"name": "坏的", "kind": "dynamic", "refresh": "manual", "rules": json.dumps(bad_tree)},
    )
    assert response.status_code == 200
    assert response.context["rule_error_path"] == "rules[1]"
    not_json = client.post(
        "/hq/segments/new/",
        {"name": "坏的", "kind": "dynamic", "refresh": "manual", "rules": "{oops"},
    )
    assert not_json.status_code == 200
    assert not Segment.objects.exists()


def test_segment_export_is_masked_and_scoped(client: Client, org: Org) -> None:
    segment = Segment.objects.create(name="女性", rules=FEMALE)
    client.force_login(org.store_manager_a1)
    assert client.get(f"/hq/segments/{segment.pk}/").status_code == 404  # head office's
    client.force_login(org.hq_operator)
    response = client.get(f"/hq/segments/{segment.pk}/export/?format=csv")
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert "+8613800001234" not in text and "*******1234" in text
    xlsx = client.get(f"/hq/segments/{segment.pk}/export/?format=xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    from members.models import Member

    assert sheet.max_row == Member.objects.filter(gender="f").count() + 1
    assert client.get(f"/hq/segments/{segment.pk}/export/?format=pdf").status_code == 302


def test_store_segment_is_limited_to_its_store(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    data = {
        "name": "本店女性",
        "kind": "dynamic",
        "refresh": "daily",
        "store": org.a1.pk,
        "rules": json.dumps(FEMALE),
    }
    assert client.post("/hq/segments/new/", data).status_code == 302
    segment = Segment.objects.get(name="本店女性")
    from members.models import Member

    assert segment.size == Member.objects.filter(gender="f", home_store=org.a1).count()
    # Another store is not theirs to choose; without a store the form refuses.
    refused = client.post("/hq/segments/new/", {**data, "store": org.b1.pk, "name": "别店"})
    assert refused.status_code == 200
    missing = client.post("/hq/segments/new/", {**data, "store": "", "name": "无店"})
    assert missing.status_code == 200
    assert Segment.objects.count() == 1
    client.force_login(org.hq_operator)
    assert client.get(f"/hq/segments/{segment.pk}/").status_code == 200


def test_archive_and_restore(client: Client, org: Org) -> None:
    segment = Segment.objects.create(name="女性", rules=FEMALE)
    client.force_login(org.hq_operator)
    assert client.post(f"/hq/segments/{segment.pk}/archive/").status_code == 302
    segment.refresh_from_db()
    assert segment.archived
    listing = client.get("/hq/segments/")
    assert segment not in list(listing.context["page"])
    assert segment in list(client.get("/hq/segments/?archived=1").context["page"])
    client.post(f"/hq/segments/{segment.pk}/archive/", {"restore": "1"})
    segment.refresh_from_db()
    assert not segment.archived


def test_scheduled_refresh_records_sizes_of_due_segments(org: Org) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from members.tasks import refresh_segment_sizes

    due = Segment.objects.create(name="每日", rules=FEMALE, refresh="daily")
    fresh = Segment.objects.create(
        name="刚数过", rules=FEMALE, refresh="daily", sized_at=timezone.now(), size=1
    )
    manual = Segment.objects.create(name="手动", rules=FEMALE, refresh="manual")
    old = Segment.objects.create(
        name="每小时", rules=FEMALE, refresh="hourly", sized_at=timezone.now() - timedelta(hours=2)
    )
    assert refresh_segment_sizes() == 2
    assert set(SegmentSize.objects.values_list("segment_id", flat=True)) == {due.pk, old.pk}
    assert not SegmentSize.objects.filter(segment__in=[fresh, manual]).exists()


def test_bulk_tag_oversized_lists_are_refused_and_change_nothing(client: Client, org: Org) -> None:
    from members.forms.tags import BULK_LIST_MAX_BYTES, BULK_LIST_MAX_LINES

    tag = TagFactory()
    client.force_login(org.hq_operator)
    client.cookies["scrm_language"] = "en"
    too_big = SimpleUploadedFile("big.txt", b"13800001234\n" * (BULK_LIST_MAX_BYTES // 12 + 1))
    response = client.post(
        "/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "upload": too_big, "confirm": "yes"}
    )
    assert "larger than 5 MB" in " ".join(response.context["form"].errors["upload"])
    too_long = "\n".join(str(n) for n in range(BULK_LIST_MAX_LINES + 1))
    response = client.post(
        "/hq/tags/bulk/", {"tag": tag.pk, "action": "add", "pasted": too_long, "confirm": "yes"}
    )
    assert "more than 100,000 lines" in " ".join(response.context["form"].errors["pasted"])
    assert not MemberTag.objects.exists() and not MemberTagLog.objects.exists()


def test_live_count_refuses_a_store_that_is_not_an_id(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    response = post_json(client, "/hq/segments/count/", {"rules": FEMALE, "store": "abc"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_rule"
    assert not Segment.objects.exists()
