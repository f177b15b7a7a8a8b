"""The material library (/hq/materials/) and guides' quick replies (/m/): each kind saved
with what it needs, bad input refused with a clear message and nothing written, every
page scoped to the stores one runs, and quick replies filled with the customer's values."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client

from campaigns.models import Broadcast, Material
from members.models import MemberTier, Segment, Tier
from members.services.points import points_earn
from scrm.core.models import AuditEvent
from tests.conftest import Org

pytestmark = pytest.mark.django_db

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


def material(**fields: Any) -> Material:
    defaults: dict[str, Any] = {"kind": "text", "title": "问候", "body": "{name}，您好"}
    return Material.objects.create(**{**defaults, **fields})


def broadcast_with(m: Material, by: Any, status: str = "draft", name: str = "会员日") -> Broadcast:
    segment = Segment.objects.create(name=f"全部-{name}", rules=EVERYONE)
    return Broadcast.objects.create(
        name=name,
        channel="inbox",
        material=m,
        segment=segment,
        store=m.store,
        status=status,
        created_by=by,
    )


def form_data(**extra: Any) -> dict[str, Any]:
    data = {
        "kind": "text",
        "title": "会员日问候",
        "body": "{name}，会员日双倍积分",
        "image_url": "",
        "link_url": "",
        "mini_program_path": "",
        "store": "",
        **extra,
    }
    return {k: v for k, v in data.items() if v is not None}


def state() -> tuple[Any, ...]:
    return (
        sorted(
            Material.objects.values_list(
                "pk", "kind", "title", "body", "image_url", "link_url", "mini_program_path"
            )
        ),
        AuditEvent.objects.filter(action__startswith="material.").count(),
    )


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


# --- the list --------------------------------------------------------------------------------


def test_list_searches_filters_and_pages(
    client: Client, org: Org, django_assert_max_num_queries: Any
) -> None:
    client.force_login(org.hq_operator)
    empty = client.get("/hq/materials/").content.decode()
    assert 'class="empty"' in empty and "/hq/materials/new/" in empty

    greeting = material(title="生日祝福", body="{name}，生日快乐", quick_reply=True)
    poster = material(
        kind="image", title="新品海报", body="", image_url="https://img.example/a.png"
    )
    card = material(
        kind="link",
        title="会员日活动",
        body="会员日全场双倍积分",
        link_url="https://shop.example/day",
        store=org.a1,
    )
    far = material(title="北京店庆", body="店庆八折", store=org.b1, quick_reply=True)

    def titles(query: str) -> set[str]:
        response = client.get(f"/hq/materials/{query}")
        assert response.status_code == 200
        found = {
            m.title
            for m in (greeting, poster, card, far)
            if f'href="/hq/materials/{m.pk}/"' in response.content.decode()
        }
        return found

    assert titles("") == {"生日祝福", "新品海报", "会员日活动", "北京店庆"}
    assert titles("?q=生日") == {"生日祝福"}
    assert titles("?q=双倍积分") == {"会员日活动"}  # the text is searched too
    assert titles("?kind=image") == {"新品海报"}
    assert titles("?kind=nonsense") == {"生日祝福", "新品海报", "会员日活动", "北京店庆"}
    assert titles("?quick=yes") == {"生日祝福", "北京店庆"}
    assert titles("?quick=no") == {"新品海报", "会员日活动"}
    assert titles("?store=hq") == {"生日祝福", "新品海报"}
    assert titles(f"?store={org.b1.pk}") == {"北京店庆"}
    assert titles("?q=生日&quick=no") == set()
    nothing = client.get("/hq/materials/?q=没有这个").content.decode()
    assert 'class="empty"' in nothing and "/hq/materials/new/" in nothing

    # Fifty a page, and the list costs the same number of queries however long it is.
    Material.objects.bulk_create(
        Material(kind="text", title=f"话术{n:02d}", body="您好") for n in range(50)
    )
    everything = list(Material.objects.all())
    with django_assert_max_num_queries(8):
        first = client.get("/hq/materials/").content.decode()
    assert sum(f'href="/hq/materials/{m.pk}/"' in first for m in everything) == 50
    second = client.get("/hq/materials/?page=2").content.decode()
    assert sum(f'href="/hq/materials/{m.pk}/"' in second for m in everything) == 4


# --- creating each kind -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "saved"),
    [
        (
            # Text: fields of other kinds typed before switching are not kept.
            {"kind": "text", "image_url": "https://img.example/x.png", "quick_reply": "on"},
            {"body": "{name}，会员日双倍积分", "image_url": "", "quick_reply": True},
        ),
        (
            {"kind": "image", "body": "", "image_url": "https://img.example/x.png"},
            {"body": "", "image_url": "https://img.example/x.png", "link_url": ""},
        ),
        (
            {
                "kind": "link",
                "link_url": "https://shop.example/day?from=scrm",
                "mini_program_path": "pages/x/index",
            },
            {
                "link_url": "https://shop.example/day?from=scrm",
                "image_url": "",
                "mini_program_path": "",
            },
        ),
        (
            {
                "kind": "mini_program",
                "mini_program_path": "pages/goods/detail?id=42&from=guide",
                "image_url": "https://img.example/cover.png",
                "link_url": "https://shop.example/",
            },
            {
                "mini_program_path": "pages/goods/detail?id=42&from=guide",
                "image_url": "https://img.example/cover.png",
                "link_url": "",
            },
        ),
    ],
)
def test_each_kind_is_created_and_audited(
    client: Client, org: Org, extra: dict[str, Any], saved: dict[str, Any]
) -> None:
    client.force_login(org.hq_operator)
    response = client.post("/hq/materials/new/", form_data(**extra))
    assert response.status_code == 302
    m = Material.objects.get()
    assert response["Location"] == f"/hq/materials/{m.pk}/"
    assert m.kind == extra["kind"] and m.title == "会员日问候"
    assert m.store is None and m.created_by == org.hq_operator
    for field, value in saved.items():
        assert getattr(m, field) == value, field
    event = AuditEvent.objects.get(action="material.create")
    assert (event.actor_id, event.target_id) == (org.hq_operator.pk, str(m.pk))
    assert event.data["kind"] == extra["kind"]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"body": ""}, "body", "A text message needs its text."),
        ({"body": "{nmae}，您好"}, "body", "Unknown variable {nmae}: use {name}, {tier}"),
        ({"body": "{name，您好"}, "body", "A brace is not closed"),
        ({"body": "您好{}"}, "body", "Write variables as a plain name in braces"),
        ({"body": "积分{points:d}"}, "body", "Write variables as a plain name in braces"),
        ({"title": ""}, "title", "This field is required."),
        ({"title": "{name}的专属"}, "title", "Variables work in the text only"),
        ({"kind": "video"}, "kind", "Select a valid choice"),
        ({"kind": "image", "body": ""}, "image_url", "An image needs its https:// address."),
        (
            {"kind": "image", "image_url": "http://img.example/a.png"},
            "image_url",
            "Use an https:// address",
        ),
        ({"kind": "image", "image_url": "not a url"}, "image_url", "Enter a valid URL."),
        ({"kind": "link"}, "link_url", "A link card needs the https:// page it opens."),
        (
            {"kind": "link", "link_url": "http://shop.example/day"},
            "link_url",
            "Use an https:// address",
        ),
        (
            {"kind": "link", "link_url": "https://shop.example/", "title": ""},
            "title",
            "This field is required.",
        ),
        (
            {"kind": "mini_program", "image_url": "https://img.example/c.png"},
            "mini_program_path",
            "A mini-program card needs the page it opens.",
        ),
        (
            {
                "kind": "mini_program",
                "image_url": "https://img.example/c.png",
                "mini_program_path": "https://shop.example/pages/x/index",
            },
            "mini_program_path",
            "Write the page inside the mini-program, such as pages/x/index?y=1",
        ),
        (
            {
                "kind": "mini_program",
                "image_url": "https://img.example/c.png",
                "mini_program_path": "/pages/x/index",
            },
            "mini_program_path",
            "no leading slash",
        ),
        (
            {
                "kind": "mini_program",
                "image_url": "https://img.example/c.png",
                "mini_program_path": "pages/../admin/index",
            },
            "mini_program_path",
            "Write the page inside the mini-program",
        ),
        (
            {"kind": "mini_program", "mini_program_path": "pages/x/index?y=1"},
            "image_url",
            "A mini-program card needs a cover image.",
        ),
    ],
)
def test_bad_materials_are_refused_with_a_clear_message(
    en: Client, org: Org, extra: dict[str, Any], field: str, message: str
) -> None:
    en.force_login(org.hq_operator)
    material(title="已有")
    before = state()
    response = en.post("/hq/materials/new/", form_data(**extra))
    assert response.status_code == 200
    text = page_text(response)
    assert f'data-testid="error-{field}"' in text
    assert message in text
    assert state() == before


def test_an_address_typed_without_its_scheme_is_taken_as_https(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    data = form_data(kind="link", link_url="shop.example/day")
    assert client.post("/hq/materials/new/", data).status_code == 302
    assert Material.objects.get().link_url == "https://shop.example/day"


# --- preview --------------------------------------------------------------------------------


def test_detail_shows_a_preview_with_sample_values(client: Client, org: Org) -> None:
    client.force_login(org.hq_operator)
    m = material(
        kind="link",
        title="会员日",
        body="{name}，{tier}会员积分{points}，{guide}为您服务",
        link_url="https://shop.example/day",
        image_url="https://img.example/t.png",
    )
    page = page_text(client.get(f"/hq/materials/{m.pk}/"))
    assert 'data-testid="material-preview"' in page
    assert "张三，金卡会员积分1280，李娜为您服务" in page
    assert ">shop.example</span>" in page
    assert "{name}，{tier}会员积分{points}" in page  # the stored text, as written


def test_the_live_preview_renders_what_is_typed_and_saves_nothing(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    typed = form_data(kind="link", body="{name}，点击领取", link_url="https://shop.example/g")
    response = en.post("/hq/materials/preview/", typed, **HX)
    page = page_text(response)
    assert response.status_code == 200 and "张三，点击领取" in page and "shop.example" in page
    bad = page_text(en.post("/hq/materials/preview/", form_data(body="{nmae}好"), **HX))
    assert 'data-testid="preview-error"' in bad and "Unknown variable {nmae}" in bad
    # A typed address that is not https never becomes a link in the page.
    unsafe = page_text(
        en.post(
            "/hq/materials/preview/",
            form_data(kind="link", link_url="javascript:alert(1)"),
            **HX,
        )
    )
    assert "javascript:" not in unsafe
    assert not Material.objects.exists()
    assert en.get("/hq/materials/preview/").status_code == 405


def test_copy_as_new_prefills_the_form(client: Client, org: Org) -> None:
    client.force_login(org.store_manager_a1)
    head_office = material(title="通用问候", body="{name}，欢迎光临", quick_reply=True)
    page = page_text(client.get(f"/hq/materials/new/?copy={head_office.pk}"))
    assert "{name}，欢迎光临" in page
    assert f'<option value="{org.a1.pk}" selected>' in page  # their only store


# --- scope ---------------------------------------------------------------------------------------


def test_store_managers_read_head_office_and_edit_only_their_stores(en: Client, org: Org) -> None:
    client = en
    head_office = material(title="总部话术", body="{name}，您好")
    mine = material(title="本店话术", body="本店欢迎您", store=org.a1)
    theirs = material(title="北京话术", body="北京欢迎您", store=org.b1)
    client.force_login(org.store_manager_a1)

    listing = client.get("/hq/materials/").content.decode()
    assert f"/hq/materials/{head_office.pk}/" in listing
    assert f"/hq/materials/{mine.pk}/" in listing
    assert f"/hq/materials/{theirs.pk}/" not in listing
    assert (
        f"/hq/materials/{theirs.pk}/"
        not in client.get(f"/hq/materials/?store={org.b1.pk}").content.decode()
    )
    assert org.b1.name not in listing  # not even as a filter choice

    before = state()
    for url in ("", "edit/", "delete/"):
        assert client.get(f"/hq/materials/{theirs.pk}/{url}").status_code == 404
    assert client.post(f"/hq/materials/{theirs.pk}/edit/", form_data()).status_code == 404
    assert client.post(f"/hq/materials/{theirs.pk}/delete/").status_code == 404
    assert client.get(f"/hq/materials/new/?copy={theirs.pk}").status_code == 404

    # Head office's: readable, not editable nor deletable.
    detail = client.get(f"/hq/materials/{head_office.pk}/").content.decode()
    assert "总部话术" in detail and 'data-testid="edit"' not in detail
    assert 'data-testid="delete"' not in detail
    assert client.get(f"/hq/materials/{head_office.pk}/edit/").status_code == 403
    refused = client.post(f"/hq/materials/{head_office.pk}/edit/", form_data(store=org.a1.pk))
    assert refused.status_code == 403
    assert "edited by head office" in refused.content.decode()
    assert client.post(f"/hq/materials/{head_office.pk}/delete/").status_code == 403

    # A store's material is for one of the manager's stores, never head office's nor another.
    assert (
        "This field is required." in client.post("/hq/materials/new/", form_data()).content.decode()
    )
    assert (
        "Select a valid choice"
        in client.post("/hq/materials/new/", form_data(store=org.b1.pk)).content.decode()
    )
    assert state() == before

    # Their own store's material they edit.
    saved = client.post(
        f"/hq/materials/{mine.pk}/edit/",
        form_data(title="本店新话术", body="{name}，本店欢迎您", store=org.a1.pk),
    )
    assert saved.status_code == 302
    mine.refresh_from_db()
    assert (mine.title, mine.body, mine.store_id) == ("本店新话术", "{name}，本店欢迎您", org.a1.pk)
    event = AuditEvent.objects.get(action="material.update")
    assert event.actor_id == org.store_manager_a1.pk
    assert event.data["changed"] == ["body", "title"]
    assert client.post("/hq/materials/new/", form_data(store=org.a1.pk)).status_code == 302
    assert Material.objects.filter(store=org.a1, created_by=org.store_manager_a1).count() == 1


def test_region_managers_and_head_office_see_what_their_scope_holds(
    client: Client, org: Org
) -> None:
    in_region = material(title="杭州话术", store=org.a2)
    elsewhere = material(title="北京话术", store=org.b1)
    client.force_login(org.region_manager_a)
    assert client.get(f"/hq/materials/{in_region.pk}/edit/").status_code == 200
    assert client.get(f"/hq/materials/{elsewhere.pk}/").status_code == 404
    client.force_login(org.hq_admin)
    assert client.get(f"/hq/materials/{elsewhere.pk}/edit/").status_code == 200
    # Guides work on /m/, not here.
    client.force_login(org.guide_a1)
    assert client.get("/hq/materials/").status_code == 403


# --- delete ---------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes_and_audits(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    m = material(title="过期话术")
    page = en.get(f"/hq/materials/{m.pk}/delete/").content.decode()
    assert 'data-testid="confirm-delete"' in page and "过期话术" in page
    assert Material.objects.filter(pk=m.pk).exists()  # asking deletes nothing
    response = en.post(f"/hq/materials/{m.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/hq/materials/"
    assert not Material.objects.filter(pk=m.pk).exists()
    event = AuditEvent.objects.get(action="material.delete")
    assert (event.actor_id, event.target_id, event.data["title"]) == (
        org.hq_operator.pk,
        str(m.pk),
        "过期话术",
    )


def test_a_material_a_broadcast_uses_is_not_deleted(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    m = material(title="会员日文案")
    broadcast_with(m, org.hq_operator, name="三月会员日")
    before = state()
    page = page_text(en.get(f"/hq/materials/{m.pk}/delete/"))
    assert 'data-testid="delete-refused"' in page and "“三月会员日”" in page
    assert 'data-testid="confirm-delete"' not in page
    refused = en.post(f"/hq/materials/{m.pk}/delete/")
    assert refused.status_code == 409 and "“三月会员日”" in page_text(refused)
    assert state() == before


def test_a_material_sent_or_awaiting_approval_is_copied_not_edited(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    draft_only = material(title="草稿用")
    broadcast_with(draft_only, org.hq_operator, status="draft", name="草稿")
    assert en.get(f"/hq/materials/{draft_only.pk}/edit/").status_code == 200
    m = material(title="已发送")
    broadcast_with(m, org.hq_operator, status="pending", name="待审批群发")
    detail = en.get(f"/hq/materials/{m.pk}/").content.decode()
    assert 'data-testid="locked"' in detail and 'data-testid="edit"' not in detail
    before = state()
    response = en.post(f"/hq/materials/{m.pk}/edit/", form_data(title="改了"), follow=True)
    assert response.redirect_chain == [(f"/hq/materials/{m.pk}/", 302)]
    assert "待审批群发" in page_text(response) and "copy it to make changes" in page_text(response)
    assert state() == before


# --- quick replies on /m/ -------------------------------------------------------------------


def test_quick_replies_are_filled_with_the_customers_values(client: Client, org: Org) -> None:
    member = org.member_of_guide_a1  # 王小美, guide_a1's customer at 上海南京西路店
    gold = Tier.objects.create(name="金卡", rank=1, threshold=1)
    MemberTier.objects.create(member=member, tier=gold)
    points_earn(member_id=member.pk, kind="activity", amount=320, source="t", external_id="q1")
    greeting = material(
        title="问候", body="{name}您好，您是{tier}会员，积分{points}，我是{guide}", quick_reply=True
    )
    store_card = material(
        kind="link",
        title="本店活动",
        body="{name}，本周末店庆",
        link_url="https://shop.example/a1",
        store=org.a1,
        quick_reply=True,
    )
    material(title="北京", body="北京店专属", store=org.b1, quick_reply=True)
    material(title="不是快捷回复", body="群发文案")

    client.force_login(org.guide_a1)
    card = client.get(f"/m/customers/{member.pk}/").content.decode()
    assert f'hx-get="/m/customers/{member.pk}/replies/"' in card

    fragment = client.get(f"/m/customers/{member.pk}/replies/", **HX)
    assert fragment.status_code == 200
    text = page_text(fragment)
    filled = f"王小美您好，您是金卡会员，积分320，我是{org.guide_a1.display_name}"
    assert filled in text
    assert f'data-copy-text="{filled}"' in text
    assert "王小美，本周末店庆" in text
    assert 'data-copy-text="王小美，本周末店庆\nhttps://shop.example/a1"' in text
    assert "北京店专属" not in text and "群发文案" not in text
    assert "<html" not in text  # a fragment for the card
    assert text.index("本店活动") < text.index("问候")  # the store's own first

    full = page_text(client.get(f"/m/customers/{member.pk}/replies/"))
    assert "<html" in full and filled in full
    # An image without text has nothing to paste: it is opened and saved instead.
    material(
        kind="image",
        title="新品海报",
        body="",
        image_url="https://img.example/p.png",
        store=org.a1,
        quick_reply=True,
    )
    full = page_text(client.get(f"/m/customers/{member.pk}/replies/"))
    assert full.count('data-testid="quick-reply"') == 3
    assert full.count('data-testid="copy-reply"') == 2
    assert 'href="https://img.example/p.png"' in full
    searched = page_text(client.get(f"/m/customers/{member.pk}/replies/?q=店庆"))
    assert "王小美，本周末店庆" in searched and filled not in searched
    assert greeting.pk and store_card.pk


def test_the_card_lists_a_few_and_links_to_all(client: Client, org: Org) -> None:
    for n in range(7):
        material(title=f"话术{n}", body=f"第{n}条", quick_reply=True)
    client.force_login(org.guide_a1)
    text = client.get(f"/m/customers/{org.member_of_guide_a1.pk}/replies/", **HX).content.decode()
    assert text.count('data-testid="quick-reply"') == 5
    assert 'data-testid="all-replies" data-count="7"' in text
    full = client.get(f"/m/customers/{org.member_of_guide_a1.pk}/replies/").content.decode()
    assert full.count('data-testid="quick-reply"') == 7


def test_quick_replies_are_404_for_someone_elses_customer(client: Client, org: Org) -> None:
    material(title="问候", body="{name}您好", quick_reply=True)
    client.force_login(org.guide_a1)
    for member in (org.member_of_guide_a1_other, org.member_b1, org.member_a1_unassigned):
        assert client.get(f"/m/customers/{member.pk}/replies/", **HX).status_code == 404
        assert client.get(f"/m/customers/{member.pk}/replies/").status_code == 404
    assert client.get("/m/customers/999999/replies/").status_code == 404
    client.force_login(org.hq_operator)  # head office works in /hq/
    assert client.get(f"/m/customers/{org.member_of_guide_a1.pk}/replies/").status_code == 403
