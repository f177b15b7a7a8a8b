"""Saving HQ's loyalty settings (tiers, earn rules, bonus periods, coupon templates,
rewards): validated by their forms, saved with an audit event in one transaction."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models, transaction

from scrm.core.services import audit_record


@transaction.atomic
def loyalty_setting_save(*, form: forms.ModelForm, kind: str, actor: Any) -> models.Model:
    created = form.instance.pk is None
    saved = form.save()
    audit_record(
        actor=actor,
        action=f"loyalty.{kind}.{'create' if created else 'update'}",
        target=saved,
        data={name: str(form.cleaned_data[name]) for name in form.changed_data},
    )
    return saved
