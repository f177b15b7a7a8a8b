"""HQ pages for step 3 (观用户): tag groups and tags, bulk tagging, and a member's tags."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from members import selectors
from members.forms.tags import BulkTagForm, MemberTagForm, TagForm, TagGroupForm
from members.models import AutoTagRule, Member, Tag, TagGroup
from members.segments.rules import rules_use_profiling
from members.services.errors import MemberError
from members.services.segments import segment_members
from members.services.tags import (
    member_tag_add,
    member_tag_remove,
    tag_settings_save,
    tags_bulk_by_staff,
)
from scrm.core.access import head_office_required, hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table
from scrm.core.params import positive_int

head_office_only = head_office_required(
    gettext_lazy("Only head-office staff can manage tags and tag members in bulk.")
)


def _on_off(active: bool) -> str:
    return _("active") if active else _("off")


@head_office_only
def tag_overview(request: HttpRequest) -> HttpResponse:
    groups = TagGroup.objects.prefetch_related("tags").order_by("position", "name")
    rules = AutoTagRule.objects.select_related("tag__group").order_by("name")
    if file_format := wanted_format(request):
        table = wanted_table(request)
        if table == "rules":
            return table_download(
                file_format=file_format,
                filename="auto-tag-rules",
                header=[_("Rule"), _("Tag"), _("Status"), _("Last run"), _("Added")]
                + [_("Removed")],
                rows=(
                    [
                        rule.name,
                        str(rule.tag),
                        _("on") if rule.active else _("off"),
                        rule.last_run_at,
                        rule.last_added if rule.last_run_at else "",
                        rule.last_removed if rule.last_run_at else "",
                    ]
                    for rule in rules
                ),
            )
        # "group-<pk>": one group's tags, with how many members in scope hold each.
        group = groups.filter(pk=positive_int(table.removeprefix("group-")) or 0).first()
        if group is None or not table.startswith("group-"):
            raise Http404
        counts = selectors.tag_holder_counts(user=request.user)
        return table_download(
            file_format=file_format,
            filename=f"tags-{group.pk}",
            header=[_("Tag"), capfirst(_("description")), _("Members"), _("Status")],
            rows=(
                [tag.name, tag.description, counts.get(tag.pk, 0), _on_off(tag.active)]
                for tag in group.tags.all()
            ),
        )
    counts = selectors.tag_holder_counts(user=request.user)
    return render(
        request,
        "members/hq/tags/overview.html",
        {
            "groups": [
                {
                    "group": group,
                    "table": f"group-{group.pk}",
                    "tags": [(tag, counts.get(tag.pk, 0)) for tag in group.tags.all()],
                }
                for group in groups
            ],
            "coverage": selectors.tag_coverage(user=request.user),
            "rules": rules,
        },
    )


EDITABLE = {"group": (TagGroup, TagGroupForm), "tag": (Tag, TagForm)}


@head_office_only
@require_http_methods(["GET", "POST"])
def tag_edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    if kind not in EDITABLE:
        raise Http404
    model, form_class = EDITABLE[kind]
    instance = model._default_manager.filter(pk=pk).first() if pk is not None else None
    if pk is not None and instance is None:
        raise Http404
    initial = {}
    if kind == "tag" and instance is None and positive_int(request.GET.get("group")):
        initial["group"] = positive_int(request.GET.get("group"))
    form = form_class(request.POST or None, instance=instance, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = tag_settings_save(form=form, actor=request.user)
        messages.success(request, _("Saved “%(name)s”.") % {"name": saved})
        return redirect("hq:tags")
    return render(
        request,
        "members/hq/tags/edit.html",
        {"form": form, "instance": instance, "kind": kind},
    )


@head_office_only
@require_http_methods(["GET", "POST"])
def tag_bulk(request: HttpRequest) -> HttpResponse:
    """Tag (or untag) a segment's members or an uploaded list: preview, then confirm."""
    form = BulkTagForm(request.POST or None, request.FILES or None, user=request.user)
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if data.get("segment"):
            member_ids = list(
                segment_members(data["segment"], user=request.user).values_list("pk", flat=True)
            )
            unknown: list[str] = []
            what = f"segment {data['segment'].pk} {data['segment'].name}"
        else:
            member_ids, unknown = selectors.members_from_list(
                user=request.user, entries=data["entries"]
            )
            upload = request.FILES.get("upload")
            what = f"uploaded list {upload.name}" if upload else "pasted list"
        remove = data["action"] == "remove"
        if request.POST.get("confirm") == "yes" and member_ids:
            result = tags_bulk_by_staff(
                tag=data["tag"], member_ids=member_ids, remove=remove, actor=request.user, what=what
            )
            if remove:
                messages.success(
                    request,
                    _("Removed “%(tag)s” from %(n)s members.")
                    % {"tag": data["tag"], "n": f"{result.changed:,}"},
                )
            else:
                messages.success(
                    request,
                    _(
                        "Tagged %(n)s members with “%(tag)s” (%(already)s already had it, "
                        "%(replaced)s had another tag of the group replaced)."
                    )
                    % {
                        "tag": data["tag"],
                        "n": f"{result.changed:,}",
                        "already": f"{result.unchanged:,}",
                        "replaced": f"{result.replaced:,}",
                    },
                )
            return redirect("hq:tags")
        if data.get("entries") is not None:
            # The confirm step posts the list back as text: no need to choose the file again.
            posted = request.POST.copy()
            posted["pasted"] = "\n".join(data["entries"])
            form.data = posted
        preview = {
            "members": len(member_ids),
            "unknown": unknown[:50],
            "unknown_count": len(unknown),
            "remove": remove,
        }
    return render(request, "members/hq/tags/bulk.html", {"form": form, "preview": preview})


def _visible_member(request: HttpRequest, member_id: int) -> Member:
    member = Member.objects.for_user(request.user).filter(pk=member_id).first()
    if member is None:
        raise Http404
    return member


@hq_required
@require_POST
def member_tag_add_view(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _visible_member(request, member_id)
    form = MemberTagForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose an active tag."))
    else:
        try:
            added = member_tag_add(member=member, tag=form.cleaned_data["tag"], actor=request.user)
        except MemberError as exc:
            messages.error(request, str(exc.message))
        else:
            tag = form.cleaned_data["tag"]
            if added:
                messages.success(request, _("Tagged with “%(tag)s”.") % {"tag": tag})
            else:
                messages.info(request, _("The member already has “%(tag)s”.") % {"tag": tag})
    return redirect(f"{member_profile_url(member)}#section-tags")


@hq_required
@require_POST
def member_tag_remove_view(request: HttpRequest, member_id: int, tag_id: int) -> HttpResponse:
    member = _visible_member(request, member_id)
    tag = Tag.objects.filter(pk=tag_id).first()
    if tag is None or not member_tag_remove(member=member, tag=tag, actor=request.user):
        raise Http404
    messages.success(request, _("Removed “%(tag)s”.") % {"tag": tag})
    return redirect(f"{member_profile_url(member)}#section-tags")


def member_profile_url(member: Member) -> str:
    from django.urls import reverse

    return reverse("hq:member-profile", args=[member.pk])


@head_office_only
def tag_members(request: HttpRequest, pk: int) -> HttpResponse:
    """Who carries a tag, newest first, with how they got it."""
    tag = Tag.objects.select_related("group").filter(pk=pk).first()
    if tag is None:
        raise Http404
    rows = selectors.tag_holders(user=request.user, tag=tag)
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename=f"tag-{tag.pk}-members",
            header=[_("Member"), _("Store"), _("Source"), _("By"), _("Added")],
            rows=(
                [
                    mt.member.name,
                    mt.member.home_store.name if mt.member.home_store else "",
                    mt.get_source_display(),
                    str(mt.added_by or ""),
                    mt.added_at,
                ]
                for mt in rows
            ),
        )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "members/hq/tags/members.html", {"tag": tag, "page": page})


# --- auto-tag rules ----------------------------------------------------------------------------


@head_office_only
@require_http_methods(["GET", "POST"])
def auto_rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    import json

    from django.urls import reverse

    from members.forms.tags import AutoTagRuleForm
    from members.services.auto_tags import auto_tag_rule_save
    from members.views.segments import builder_catalogue

    rule = AutoTagRule.objects.filter(pk=pk).first() if pk is not None else None
    if pk is not None and rule is None:
        raise Http404
    initial = {}
    if rule is None:
        initial["rules"] = json.dumps(
            {
                "op": "and",
                "rules": [{"field": "order_count", "operator": "gte", "value": 2, "days": 90}],
            }
        )
    form = AutoTagRuleForm(request.POST or None, instance=rule, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = auto_tag_rule_save(form=form, actor=request.user)
        messages.success(request, _("Saved rule “%(name)s”.") % {"name": saved.name})
        return redirect("hq:auto-rule", pk=saved.pk)
    return render(
        request,
        "members/hq/segments/builder.html",
        {
            "form": form,
            "catalogue": builder_catalogue(request.user),
            "rule_error_path": form.rule_error.path if form.rule_error else "",
            "heading": rule.name if rule else _("New auto-tag rule"),
            "back_url": reverse("hq:tags"),
            "back_label": _("Tags"),
            "save_label": _("Save rule"),
        },
    )


@head_office_only
def auto_rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from members.services.auto_tags import auto_tag_rule_preview

    rule = AutoTagRule.objects.select_related("tag__group").filter(pk=pk).first()
    if rule is None:
        raise Http404
    return render(
        request,
        "members/hq/tags/rule.html",
        {
            "rule": rule,
            "preview": auto_tag_rule_preview(rule=rule),
            "uses_profiling": rules_use_profiling(rule.rules),
        },
    )


@head_office_only
@require_POST
def auto_rule_run(request: HttpRequest, pk: int) -> HttpResponse:
    from members.services.auto_tags import auto_tag_rule_apply

    rule = AutoTagRule.objects.select_related("tag__group").filter(pk=pk).first()
    if rule is None:
        raise Http404
    if not rule.active or not rule.tag.active:
        messages.error(request, _("Switch the rule (and its tag) on before running it."))
        return redirect("hq:auto-rule", pk=pk)
    effect = auto_tag_rule_apply(rule=rule)
    messages.success(
        request,
        _("Ran “%(name)s”: %(added)s tagged, %(removed)s untagged.")
        % {"name": rule.name, "added": effect.added, "removed": effect.removed},
    )
    return redirect("hq:auto-rule", pk=pk)
