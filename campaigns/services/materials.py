"""Writes to the material library (素材库), each audited. A material a broadcast carries
is never deleted: the broadcast's record must keep what was sent."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.deletion import ProtectedError

from campaigns.models import Broadcast, Material
from scrm.core.services import audit_record


@transaction.atomic
def material_save(*, form: Any, actor: Any) -> Material:
    creating = form.instance.pk is None
    material: Material = form.save(commit=False)
    if creating:
        material.created_by = actor
        material.save()
    else:
        material.save(update_fields=list(form.Meta.fields))
    audit_record(
        actor=actor,
        action="material.create" if creating else "material.update",
        target=material,
        data={
            "title": material.title,
            "kind": material.kind,
            "store": material.store_id,
            "changed": [] if creating else sorted(form.changed_data),
        },
    )
    return material


class MaterialInUse(Exception):
    def __init__(self, broadcasts: list[Broadcast]) -> None:
        super().__init__("material in use")
        self.broadcasts = broadcasts


@transaction.atomic
def material_delete(*, material: Material, actor: Any) -> None:
    """Delete `material`, unless a broadcast (whatever its state) carries it."""
    used = list(material.broadcasts.order_by("-created_at", "-pk"))
    if used:
        raise MaterialInUse(used)
    audit_record(
        actor=actor,
        action="material.delete",
        target=material,
        data={"title": material.title, "kind": material.kind, "store": material.store_id},
    )
    try:
        with transaction.atomic():
            material.delete()
    except ProtectedError as exc:  # a broadcast took it meanwhile
        raise MaterialInUse(list(material.broadcasts.all())) from exc
