"""The material library (素材库) at /hq/materials/, and guides' quick replies on /m/.

Head office's materials (no store) are everyone's to read and head office's to edit; a
store's materials are that store's managers' (and head office's) to read and edit, and
another store's are a 404. A material a broadcast has gone out with (or is waiting for
approval with) is no longer edited in place, so what was approved is what is sent; it is
copied instead. Quick replies are filled with the customer's own values on the guide's
customer card, for the guide to copy into WeCom."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.forms_materials import MaterialForm, body_errors
from campaigns.models import Broadcast, BroadcastStatus, Material, MaterialKind
from campaigns.selectors import can_edit, materials_for_user, visible_broadcast_ids
from campaigns.services.content import render as render_text
from campaigns.services.materials import MaterialInUse, material_save
from campaigns.services.materials import material_delete as material_delete_service
from members.models import Member
from members.selectors import guides as guide_selectors
from members.services.points import points_balances
from members.services.tiers import tier_card
from scrm.core.access import hq_required, mobile_required
from scrm.core.exports import table_download, wanted_format
from scrm.core.params import positive_int
from scrm.org.selectors import store_choices

PAGE_SIZE = 50
QUICK_REPLIES_ON_CARD = 5
# What the preview fills the variables with (a made-up customer).
SAMPLE = {"name": "张三", "tier": "金卡", "points": "1280", "guide": "李娜"}


def _material(request: HttpRequest, pk: int) -> Material:
    material = (
        materials_for_user(request.user).select_related("store", "created_by").filter(pk=pk).first()
    )
    if material is None:
        raise Http404
    return material


def _refuse_head_office(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "403.html",
        {
            "message": gettext_lazy(
                "Head office's materials are edited by head office. "
                "Copy it to make your store's own version."
            ),
            "home_url": reverse("hq:materials"),
        },
        status=403,
    )


def _sent_with(material: Material) -> list[Broadcast]:
    """Broadcasts past their draft that carry `material`: what they were approved (or sent)
    with must stay what it was."""
    return list(
        material.broadcasts.exclude(status=BroadcastStatus.DRAFT).order_by("-created_at", "-pk")
    )


def _names(broadcasts: list[Broadcast], visible: set[int]) -> str:
    """The names of the broadcasts in `visible`; the others are only counted."""
    parts = [f"“{b.name}”" for b in broadcasts if b.pk in visible]
    hidden = len(broadcasts) - len(parts)
    if hidden:
        parts.append(
            ngettext("%(n)s of another store", "%(n)s of other stores", hidden) % {"n": hidden}
        )
    return "、".join(parts)


# --- previews -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    kind: str
    title: str
    text: str  # the text with its variables filled
    image_url: str
    link_url: str
    mini_program_path: str
    error: str = ""

    @property
    def link_host(self) -> str:
        return urlsplit(self.safe_link_url).hostname or ""

    @property
    def safe_link_url(self) -> str:
        """The address only when it is https (the live preview shows what is typed)."""
        return _https_only(self.link_url)

    @property
    def safe_image_url(self) -> str:
        return _https_only(self.image_url)

    @property
    def copy_text(self) -> str:
        """What a guide pastes into WeCom: the text, and a link card's address (an image or
        a mini-program card without text has nothing to paste)."""
        parts = [self.text, self.link_url if self.kind == MaterialKind.LINK else ""]
        return "\n".join(part for part in parts if part)


def _https_only(url: str) -> str:
    try:
        return url if urlsplit(url).scheme.lower() == "https" else ""
    except ValueError:
        return ""


def preview(
    *,
    kind: str,
    title: str,
    body: str,
    values: dict[str, Any],
    image_url: str = "",
    link_url: str = "",
    mini_program_path: str = "",
) -> Preview:
    """A material as a recipient would see it, its variables filled from `values`. Text the
    variables check refuses is shown as it is, with the reason."""
    error = body_errors(body) or ""
    text = body if error else render_text(body, values)
    return Preview(
        kind=kind,
        title=title,
        text=text,
        image_url=image_url,
        link_url=link_url,
        mini_program_path=mini_program_path,
        error=error,
    )


def material_preview(material: Material, values: dict[str, Any]) -> Preview:
    return preview(
        kind=material.kind,
        title=material.title,
        body=material.body,
        values=values,
        image_url=material.image_url,
        link_url=material.link_url,
        mini_program_path=material.mini_program_path,
    )


def member_values(member: Member) -> dict[str, Any]:
    """A customer's own values for the variables, as the customer card shows them."""
    card = tier_card(member_id=member.pk)
    balances = points_balances(member_id=member.pk)
    return {
        "name": member.name,
        "tier": card.tier.name if card.tier else "",
        "points": str(balances.activity),  # a string, so that 0 shows as 0
        "guide": str(member.guide) if member.guide_id else "",
    }


# --- /hq/materials/ -------------------------------------------------------------------------


@hq_required
def material_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    materials = (
        materials_for_user(user)
        .select_related("store", "created_by")
        .annotate(used=Count("broadcasts"))
        .order_by("-created_at", "-pk")
    )
    search = request.GET.get("q", "").strip()[:50]
    if search:
        materials = materials.filter(Q(title__icontains=search) | Q(body__icontains=search))
    kind = request.GET.get("kind", "")
    if kind in MaterialKind.values:
        materials = materials.filter(kind=kind)
    else:
        kind = ""
    quick = request.GET.get("quick", "")
    if quick in ("yes", "no"):
        materials = materials.filter(quick_reply=quick == "yes")
    else:
        quick = ""
    stores = store_choices(user=user)
    owner = request.GET.get("store", "")
    if owner == "hq":
        materials = materials.filter(store__isnull=True)
    elif (store_id := positive_int(owner)) is not None:
        materials = materials.filter(store_id=store_id)  # within what the user may read
    else:
        owner = ""
    file_format = wanted_format(request)
    if file_format:
        return table_download(
            file_format=file_format,
            filename="materials",
            header=[
                _("Title"),
                _("Kind"),
                _("Text"),
                _("Link"),
                _("Quick reply"),
                _("Owner"),
                _("Broadcasts"),
                _("Created"),
            ],
            rows=(
                [
                    m.title,
                    m.get_kind_display(),
                    m.body,
                    m.link_url,
                    m.quick_reply,
                    m.store or _("Head office"),
                    m.used,
                    m.created_at,
                ]
                for m in materials.iterator(chunk_size=500)
            ),
        )
    page = Paginator(materials, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/hq/material_list.html",
        {
            "page": page,
            "search": search,
            "kind": kind,
            "kinds": MaterialKind.choices,
            "quick": quick,
            "owner": owner,
            "stores": stores,
            "filtered": bool(search or kind or quick or owner),
        },
    )


def _copy_initial(request: HttpRequest, source: Material) -> dict[str, Any]:
    user: Any = request.user
    initial: dict[str, Any] = {
        "kind": source.kind,
        "title": _("%(title)s (copy)") % {"title": source.title},
        "body": source.body,
        "image_url": source.image_url,
        "link_url": source.link_url,
        "mini_program_path": source.mini_program_path,
        "quick_reply": source.quick_reply,
    }
    if can_edit(user, source):
        initial["store"] = source.store_id
    elif not user.is_hq:
        mine = list(store_choices(user=user).values_list("pk", flat=True)[:2])
        if len(mine) == 1:
            initial["store"] = mine[0]
    return initial


@hq_required
@require_http_methods(["GET", "POST"])
def material_new(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    initial: dict[str, Any] = {}
    copy_of = positive_int(request.GET.get("copy"))
    if copy_of is not None:
        initial = _copy_initial(request, _material(request, copy_of))
    elif request.GET.get("kind") in MaterialKind.values:
        initial["kind"] = request.GET["kind"]
    if not user.is_hq and "store" not in initial:
        mine = list(store_choices(user=user).values_list("pk", flat=True)[:2])
        if len(mine) == 1:
            initial["store"] = mine[0]
    form = MaterialForm(request.POST or None, initial=initial, user=user)
    if request.method == "POST" and form.is_valid():
        material = material_save(form=form, actor=user)
        messages.success(request, _("Saved “%(title)s”.") % {"title": material.title})
        return redirect("hq:material", pk=material.pk)
    return render(
        request,
        "campaigns/hq/material_form.html",
        {"form": form, "material": None, "preview": _form_preview(form), "sample": SAMPLE},
    )


@hq_required
@require_http_methods(["GET", "POST"])
def material_edit(request: HttpRequest, pk: int) -> HttpResponse:
    material = _material(request, pk)
    if not can_edit(request.user, material):
        return _refuse_head_office(request)
    sent_with = _sent_with(material)
    if sent_with:
        messages.error(
            request,
            _(
                "Broadcast %(names)s went out (or is waiting for approval) with this material, "
                "so it stays as it is: copy it to make changes."
            )
            % {"names": _names(sent_with, visible_broadcast_ids(request.user, sent_with))},
        )
        return redirect("hq:material", pk=material.pk)
    form = MaterialForm(request.POST or None, instance=material, user=request.user)
    if request.method == "POST" and form.is_valid():
        material = material_save(form=form, actor=request.user)
        messages.success(request, _("Saved “%(title)s”.") % {"title": material.title})
        return redirect("hq:material", pk=material.pk)
    return render(
        request,
        "campaigns/hq/material_form.html",
        {"form": form, "material": material, "preview": _form_preview(form), "sample": SAMPLE},
    )


def _form_preview(form: MaterialForm) -> Preview:
    """The preview of what the form holds now (as typed when it was sent back)."""

    def value(name: str) -> str:
        raw = form[name].value()
        return str(raw) if raw is not None else ""

    return preview(
        kind=value("kind") or MaterialKind.TEXT,
        title=value("title"),
        body=value("body"),
        values=SAMPLE,
        image_url=value("image_url"),
        link_url=value("link_url"),
        mini_program_path=value("mini_program_path"),
    )


@hq_required
@require_POST
def material_preview_view(request: HttpRequest) -> HttpResponse:
    """The live preview beside the form (htmx posts the form as it is typed); saves nothing."""
    form = MaterialForm(request.POST, user=request.user)
    return render(
        request,
        "campaigns/hq/material_preview.html",
        {"preview": _form_preview(form), "sample": SAMPLE},
    )


@hq_required
def material_detail(request: HttpRequest, pk: int) -> HttpResponse:
    material = _material(request, pk)
    user: Any = request.user
    used = list(material.broadcasts.order_by("-created_at", "-pk"))
    visible = visible_broadcast_ids(user, used)
    return render(
        request,
        "campaigns/hq/material_detail.html",
        {
            "material": material,
            "preview": material_preview(material, SAMPLE),
            "sample": SAMPLE,
            # Another store's broadcast (of a head-office material) is absent, not named.
            "used": [(b, True) for b in used if b.pk in visible],
            "can_edit": can_edit(user, material),
            "locked": any(b.status != BroadcastStatus.DRAFT for b in used),
        },
    )


@hq_required
@require_http_methods(["GET", "POST"])
def material_delete(request: HttpRequest, pk: int) -> HttpResponse:
    material = _material(request, pk)
    if not can_edit(request.user, material):
        return _refuse_head_office(request)
    used = list(material.broadcasts.order_by("-created_at", "-pk"))
    if request.method == "POST" and not used:
        title = material.title
        try:
            material_delete_service(material=material, actor=request.user)
        except MaterialInUse as exc:
            used = exc.broadcasts
        else:
            messages.success(request, _("Deleted “%(title)s”.") % {"title": title})
            return redirect("hq:materials")
    visible = visible_broadcast_ids(request.user, used)
    return render(
        request,
        "campaigns/hq/material_delete.html",
        {
            "material": material,
            "used": used,
            "used_visible": [b for b in used if b.pk in visible],
            "names": _names(used, visible),
        },
        status=409 if used and request.method == "POST" else 200,
    )


# --- quick replies on /m/ --------------------------------------------------------------------


@mobile_required
def customer_quick_replies(request: HttpRequest, member_id: int) -> HttpResponse:
    """The quick replies for one of the guide's own customers, filled with the customer's
    values. On the customer card (htmx) the first few; here, all of them, searchable."""
    member = guide_selectors.customer_for_user(user=request.user, member_id=member_id)
    if member is None:
        raise Http404
    replies = (
        materials_for_user(request.user)
        .filter(quick_reply=True)
        .order_by(F("store").asc(nulls_last=True), "title", "pk")
    )
    on_card = bool(getattr(request, "htmx", False))
    search = "" if on_card else request.GET.get("q", "").strip()[:50]
    if search:
        replies = replies.filter(Q(title__icontains=search) | Q(body__icontains=search))
    values = member_values(member)
    if on_card:
        shown = list(replies[: QUICK_REPLIES_ON_CARD + 1])
        more = len(shown) > QUICK_REPLIES_ON_CARD
        return render(
            request,
            "campaigns/mobile/_quick_replies.html",
            {
                "member": member,
                "replies": [
                    (m, material_preview(m, values)) for m in shown[:QUICK_REPLIES_ON_CARD]
                ],
                "more": replies.count() if more else 0,
                "on_card": True,
            },
        )
    page = Paginator(replies, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/mobile/quick_replies.html",
        {
            "member": member,
            "page": page,
            "replies": [(m, material_preview(m, values)) for m in page],
            "search": search,
            "tasks_due": guide_selectors.task_list(user=request.user).count(),
            "tab": "customers",
        },
    )
