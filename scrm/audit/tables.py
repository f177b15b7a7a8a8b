"""The audited tables as people name them, and their columns' labels.

The triggers know tables by their database names (migration 0002); the viewer shows
them as 会员, 身份, 积分…, and each changed column by its model field's label when a
model owns it (looked up from the app registry, so this module names no other app).
"""

from __future__ import annotations

from functools import cache

from django.apps import apps
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

TABLE_LABELS: dict[str, Promise] = {
    "members_member": _("Member"),
    "members_identity": _("Identity"),
    "members_ledgerentry": _("Points"),
    "members_pointsaccount": _("Points balance"),
    "members_membertier": _("Tier"),
    "members_tierchange": _("Tier change"),
    "members_coupon": _("Coupon"),
    "members_redemption": _("Points mall redemption"),
    "members_guideassignment": _("Guide assignment"),
    "campaigns_broadcast": _("Broadcast"),
    "org_staff": _("Staff"),
    "org_staff_groups": _("Staff groups"),
    "org_staff_user_permissions": _("Staff permissions"),
    "org_staff_stores": _("Staff stores"),
    "auth_group_permissions": _("Group permissions"),
}


def table_label(table: str) -> str:
    """The table as people name it: ours above, else its model's name (a key rotation's
    event counts rows of tables the triggers do not watch), else the table name."""
    label = TABLE_LABELS.get(table) or _model_names().get(table)
    return capfirst(str(label)) if label is not None else table


@cache
def _model_names() -> dict[str, str | Promise]:
    return {
        model._meta.db_table: model._meta.verbose_name or model.__name__
        for model in apps.get_models()
    }


@cache
def _column_labels(table: str) -> dict[str, str | Promise]:
    # Kept lazy: translated when shown, in the viewer's language.
    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table == table:
            return {
                str(field.column): getattr(field, "verbose_name", None) or field.name
                for field in model._meta.concrete_fields
            }
    return {}


def column_label(table: str, column: str) -> str:
    """The field's label in the current language, else the column name itself (a column
    the models no longer have, in an old event)."""
    label = _column_labels(table).get(column)
    return column if label is None else str(label)
