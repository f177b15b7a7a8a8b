"""django-import-export for small member files in the admin (preview, then confirm).

The rows go through the same parser and the same set-based chunk import as import jobs,
so a file behaves identically in the admin and on the import page.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from django.core.exceptions import ValidationError
from import_export import resources
from import_export.results import Result, RowResult

from members.models import Member
from scrm.core.logging import mask_phones_in
from touchpoints.imports import mappings
from touchpoints.imports.jobs import mapping_for
from touchpoints.imports.members_import import (
    Counts,
    MemberRowParser,
    import_member_chunk,
    lookups_for_import,
    required_member_columns,
)

OUTCOME_TYPES = {
    "created": RowResult.IMPORT_TYPE_NEW,
    "merged": RowResult.IMPORT_TYPE_UPDATE,
    "updated": RowResult.IMPORT_TYPE_UPDATE,
    "unchanged": RowResult.IMPORT_TYPE_SKIP,
}
ADMIN_MAX_ROWS = 5000


class MemberImportResource(resources.ModelResource):
    """Generic-template member files (手机号, 姓名, …), up to 5,000 rows in the admin."""

    class Meta:
        model = Member
        fields = ()

    def import_data_inner(
        self,
        dataset: Any,
        dry_run: bool,
        raise_errors: bool,
        using_transactions: bool,
        collect_failed_rows: bool,
        **kwargs: Any,
    ) -> Result:
        result = self.get_result_class()()
        headers = [str(h or "") for h in (dataset.headers or [])]
        result.diff_headers = headers
        result.total_rows = len(dataset)
        columns = mappings.match_columns(headers, mapping_for("members", "generic"))
        if required_member_columns(columns):
            self.handle_import_error(
                result,
                ValidationError(
                    "The file needs a 手机号 column or a member id column (会员卡号, unionid, …)."
                ),
                raise_errors,
            )
            return result
        if len(dataset) > ADMIN_MAX_ROWS:
            self.handle_import_error(
                result,
                ValidationError(
                    f"The admin imports up to {ADMIN_MAX_ROWS} rows; use the import page "
                    "(/hq/imports/) for larger files."
                ),
                raise_errors,
            )
            return result
        parser = MemberRowParser(
            source="import", columns=columns, headers=headers, lookups=lookups_for_import()
        )
        counts = Counts(outcomes={})
        parsed: list[Any] = []
        rows: dict[int, OrderedDict[str, Any]] = {}
        for number, values in enumerate(dataset, start=2):
            cells = ["" if v is None else str(v) for v in values]
            rows[number] = OrderedDict(zip(headers, cells, strict=False))
            parser.feed(number, cells, counts, parsed)
        import_member_chunk(parsed, source="import", counts=counts)
        reasons: dict[int, list[str]] = {}
        for number, column, value, reason in counts.errors:
            reasons.setdefault(number, []).append(f"{column} {value}: {reason}".strip(": "))
        for number, cells_by_header in rows.items():
            # The preview shows the file's rows back: phones in them are masked.
            row = OrderedDict(
                (key, mask_phones_in(value)) for key, value in cells_by_header.items()
            )
            outcome = (counts.outcomes or {}).get(number)
            if outcome is None or outcome == "review":
                message = "; ".join(reasons.get(number, ["invalid row"]))
                result.append_invalid_row(number, row, ValidationError({"__all__": [message]}))
                result.totals[RowResult.IMPORT_TYPE_INVALID] += 1
                continue
            row_result = RowResult()
            row_result.import_type = OUTCOME_TYPES[outcome]
            row_result.row_values = row
            row_result.diff = list(row.values())
            result.append_row_result(row_result)
            result.increment_row_result_total(row_result)
        return result
