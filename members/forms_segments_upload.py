"""The "upload a list" form (step 6): a CSV or XLSX whose column of phones, member ids,
unionids, openids or member card numbers becomes a static segment.

Files are read by the shared table reader (`scrm.core.tabular`), as channel imports
are: the same encoding detection (UTF-8, UTF-8 with BOM, GBK/GB18030), binary and Excel
checks and messages. A refused file leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.phones import try_normalize_phone
from members.services.segments import LIST_MAX_ROWS, ListColumn

# Reused from the channel imports (see the module docstring). Members importing from
# touchpoints runs against the layering in DESIGN.md; the reader is plain Python and
# belongs in scrm/core, where this import should follow it.
from scrm.core.tabular import FileInfo, ImportFileError, header_key, inspect_file, iter_rows
from scrm.org.models import Store

MB = 1024 * 1024
LIST_MAX_BYTES = 20 * MB

# Headers that say what a column holds (compared after header_key: NFKC, lower case,
# no spaces).
COLUMN_HEADERS: dict[str, tuple[str, ...]] = {
    ListColumn.PHONE: (
        "phone",
        "mobile",
        "phonenumber",
        "mobilephone",
        "tel",
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "电话号码",
        "联系电话",
        "联系手机",
        "绑定手机",
        "收货人手机号",
    ),
    ListColumn.MEMBER_ID: ("memberid", "member_id", "id", "会员id", "系统会员id"),
    ListColumn.UNIONID: ("unionid", "union_id"),
    ListColumn.OPENID: ("openid", "open_id"),
    ListColumn.POS_CARD: (
        "membernumber",
        "member_no",
        "memberno",
        "cardnumber",
        "card_no",
        "cardno",
        "pos_card",
        "会员卡号",
        "会员号",
        "会员编号",
        "卡号",
    ),
}
_KIND_OF_HEADER = {
    header_key(alias): kind for kind, aliases in COLUMN_HEADERS.items() for alias in aliases
}


def list_max_bytes() -> int:
    return int(getattr(settings, "SEGMENT_LIST_MAX_BYTES", LIST_MAX_BYTES))


def list_max_rows() -> int:
    return min(int(getattr(settings, "SEGMENT_LIST_MAX_ROWS", LIST_MAX_ROWS)), LIST_MAX_ROWS)


class SegmentUploadForm(forms.Form):
    name = forms.CharField(max_length=100, label=gettext_lazy("Name"))
    description = forms.CharField(max_length=300, required=False, label=gettext_lazy("description"))
    store = forms.ModelChoiceField(
        queryset=Store.objects.none(), required=False, label=gettext_lazy("Store")
    )
    holds = forms.ChoiceField(
        required=False,
        label=gettext_lazy("The column holds"),
        choices=[("", gettext_lazy("Detect from the column header")), *ListColumn.choices],
    )
    column = forms.CharField(
        max_length=100,
        required=False,
        label=gettext_lazy("Column header"),
        help_text=gettext_lazy(
            "Empty: the file's only column, or the column whose header says what it holds "
            "(手机号, 会员ID, unionid, openid, 会员卡号)."
        ),
    )
    file = forms.FileField(
        allow_empty_file=True,  # the reader says "empty (0 bytes)" itself
        label=gettext_lazy("File"),
        help_text=gettext_lazy(
            "CSV (UTF-8 or GBK) or XLSX, at most 20 MB and 200,000 rows; the first row holds "
            "the column headers."
        ),
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        stores: Any = Store.objects.for_user(user).order_by("code")
        store_field: Any = self.fields["store"]
        store_field.queryset = stores
        if getattr(user, "is_hq", False):
            store_field.help_text = gettext_lazy(
                "Empty: a head-office segment; a store: only that store's members are matched."
            )
        else:
            store_field.required = True
            store_field.help_text = gettext_lazy("Only members of this store are matched.")
            only = list(stores[:2])
            if len(only) == 1 and not self.is_bound:
                self.initial.setdefault("store", only[0].pk)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is None or self.errors:
            return data
        if upload.size is not None and upload.size > list_max_bytes():
            self.add_error(
                "file",
                _("The file is %(size)s MB; the limit is %(limit)s MB.")
                % {
                    "size": f"{upload.size / MB:.1f}",
                    "limit": f"{list_max_bytes() / MB:.0f}",
                },
            )
            return data
        folder = tempfile.mkdtemp(prefix="segment-list-")
        try:
            path = Path(folder) / "upload"
            with open(path, "wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            with open(path, "rb") as handle:
                workbook = handle.read(4) == b"PK\x03\x04"
            # The reader tells the formats apart by their first bytes; openpyxl also wants
            # the extension (a workbook renamed .csv is still read as one).
            path = path.rename(path.with_suffix(".xlsx" if workbook else ".csv"))
            name = os.path.basename(upload.name or "upload.csv")
            info = inspect_file(path, name=name, max_bytes=list_max_bytes())
            index, holds, header_is_data = self._choose_column(info, data)
            data["rows"] = self._read(path, info, index, holds, header_is_data)
        except ImportFileError as exc:
            self.add_error("file", exc.message)
            return data
        except forms.ValidationError as exc:
            self.add_error("file", exc)
            return data
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        data["holds"] = holds
        data["header"] = info.headers[index] if not header_is_data else ""
        data["file_name"] = name
        return data

    def _choose_column(self, info: FileInfo, data: dict[str, Any]) -> tuple[int, str, bool]:
        """(column index, what it holds, whether the "header" cell is really a value)."""
        headers = info.headers
        holds: str = data.get("holds") or ""
        wanted = (data.get("column") or "").strip()
        found = ", ".join(h for h in headers if h)[:300]
        if wanted:
            keys = [header_key(h) for h in headers]
            if header_key(wanted) not in keys:
                raise forms.ValidationError(
                    _("The file has no column “%(column)s”. Its columns are: %(found)s.")
                    % {"column": wanted, "found": found}
                )
            index = keys.index(header_key(wanted))
        elif len(headers) == 1:
            index = 0
        else:
            kinds = [_KIND_OF_HEADER.get(header_key(h), "") for h in headers]
            candidates = [i for i, kind in enumerate(kinds) if kind and kind == (holds or kind)]
            if len(candidates) != 1:
                what = str(ListColumn(holds).label) if holds else ""
                if not candidates and holds:
                    message = _(
                        "No column header says it holds %(what)s: type the header of the "
                        "column to use. The file's columns are: %(found)s."
                    )
                elif not candidates:
                    message = _(
                        "No column header says what it holds (phone, member id, unionid, "
                        "openid or member card number): type the header of the column to "
                        "use. The file's columns are: %(found)s."
                    )
                elif holds:
                    message = _(
                        "Several columns could hold %(what)s: type the header of the one to "
                        "use. The file's columns are: %(found)s."
                    )
                else:
                    message = _(
                        "Several columns could be the list: choose what the column holds, or "
                        "type the header of the one to use. The file's columns are: %(found)s."
                    )
                raise forms.ValidationError(message % {"what": what, "found": found})
            index = candidates[0]
        detected = _KIND_OF_HEADER.get(header_key(headers[index]), "")
        header_is_data = False
        if not holds:
            if detected:
                holds = detected
            elif len(headers) == 1 and self._looks_like(headers[0]):
                holds, header_is_data = self._looks_like(headers[0]), True
            else:
                raise forms.ValidationError(
                    _(
                        "The header “%(header)s” does not say what the column holds: choose "
                        "it under “The column holds”."
                    )
                    % {"header": headers[index][:40]}
                )
        elif not detected and len(headers) == 1 and self._looks_like(headers[0]) == holds:
            header_is_data = True  # a bare list without a header row
        return index, holds, header_is_data

    @staticmethod
    def _looks_like(cell: str) -> str:
        """A header cell that is itself a phone or a member id (a list with no header)."""
        if try_normalize_phone(cell):
            return ListColumn.PHONE
        if cell.isascii() and cell.isdigit():
            return ListColumn.MEMBER_ID
        return ""

    def _read(
        self, path: Path, info: FileInfo, index: int, holds: str, header_is_data: bool
    ) -> list[tuple[int, str]]:
        limit = list_max_rows()
        rows: list[tuple[int, str]] = [(1, info.headers[index])] if header_is_data else []
        for number, cells in iter_rows(path, info):
            rows.append((number, cells[index] if index < len(cells) else ""))
            if len(rows) > limit:
                raise forms.ValidationError(
                    _("The file has more than %(limit)s rows: split it into smaller lists.")
                    % {"limit": f"{limit:,}"}
                )
        if not rows:
            raise forms.ValidationError(_("The file has column headers but no data rows."))
        return rows
