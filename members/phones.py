"""Phone numbers to E.164, from the forms people and channel exports actually write."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Mainland mobile numbers: 1, then 3–9, then nine digits.
MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")
# Separators people type between digit groups (after NFKC, full-width forms are ASCII).
SEPARATORS = re.compile(r"[\s\-\.\(\)/\u00a0\u2010-\u2015\u2212]")


class InvalidPhone(ValidationError):
    pass


def normalize_phone(raw: object) -> str:
    """Return `raw` as E.164 (+8613812341234) or raise InvalidPhone saying why.

    Accepts full-width digits (１３８…), spaces, dashes, dots, brackets, and the prefixes
    +86, 0086, 86 and (+86). Numbers outside mainland China need their + country code.
    """
    if raw is None:
        raise InvalidPhone(_("Phone number is empty."), code="phone_empty")
    if (
        type(raw) is str
        and len(raw) == 11
        and raw.isascii()
        and raw.isdigit()
        and raw[0] == "1"
        and raw[1] in "3456789"
    ):
        return f"+86{raw}"  # the commonest form, plain 11 digits: skip the general path
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    if not text:
        raise InvalidPhone(_("Phone number is empty."), code="phone_empty")
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # spreadsheets that stored the number as a float
    compact = SEPARATORS.sub("", text)
    international = compact.startswith("+") or compact.startswith("00")
    digits = compact.lstrip("+")
    if digits.startswith("00"):
        digits = digits[2:]
    if not digits.isdigit():
        raise InvalidPhone(
            _("“%(value)s” is not a phone number: it contains letters or symbols."),
            code="phone_invalid",
            params={"value": text[:40]},
        )
    if not international and MAINLAND_MOBILE.fullmatch(digits):
        return f"+86{digits}"
    if digits.startswith("86") and MAINLAND_MOBILE.fullmatch(digits[2:]):
        return f"+{digits}"
    if international and not digits.startswith("86") and 8 <= len(digits) <= 15:
        return f"+{digits}"
    raise InvalidPhone(
        _(
            "“%(value)s” is not a valid mobile number: expected 11 digits starting with 13–19, "
            "or + and a country code."
        ),
        code="phone_invalid",
        params={"value": text[:40]},
    )


def try_normalize_phone(raw: object) -> str | None:
    try:
        return normalize_phone(raw)
    except InvalidPhone:
        return None
