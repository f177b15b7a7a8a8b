from __future__ import annotations

from typing import Any

from django.db import transaction

from scrm.core.services import audit_record
from touchpoints.models import ImportMapping


@transaction.atomic
def mapping_update(
    *, mapping: ImportMapping, columns: dict[str, list[str]], actor: Any
) -> ImportMapping:
    before = mapping.columns
    mapping.columns = columns
    mapping.updated_by = actor
    mapping.save(update_fields=["columns", "updated_by", "updated_at"])
    audit_record(
        actor=actor,
        action="import.mapping_update",
        target=mapping,
        data={"before": before, "after": columns},
    )
    return mapping
