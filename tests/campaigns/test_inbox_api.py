"""The mini-program's message centre: a member sees and reads only their own messages."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.models import InboxMessage
from members.services.auth import _open_session
from tests.conftest import Org

pytestmark = pytest.mark.django_db


def test_inbox_lists_and_reads_only_ones_own(client: Client, org: Org) -> None:
    wang, qian = org.member_of_guide_a1, org.member_b1
    first = InboxMessage.objects.create(member=wang, key="k1", title="会员日", body="双倍积分")
    second = InboxMessage.objects.create(member=wang, key="k2", title="上新", body="新品到店")
    theirs = InboxMessage.objects.create(member=qian, key="k3", title="别人的", body="x")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {_open_session(wang, 'wx-app').access}"}
    listing = client.get("/api/v1/me/messages", **auth).json()
    assert [m["id"] for m in listing["results"]] == [second.pk, first.pk]
    read = client.post(f"/api/v1/me/messages/{first.pk}/read", **auth)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = client.get("/api/v1/me/messages", {"unread": "1"}, **auth).json()
    assert [m["id"] for m in unread["results"]] == [second.pk]
    missing = client.post(f"/api/v1/me/messages/{theirs.pk}/read", **auth)
    assert missing.status_code == 404 and missing.json()["code"] == "message_not_found"
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert client.get("/api/v1/me/messages").status_code in (401, 403)
