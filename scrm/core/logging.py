"""A logging filter that masks phone numbers in every record (defense in depth: code
should never log a phone, and if it does the handlers still write it masked)."""

from __future__ import annotations

import logging
import re

from scrm.core.pii import mask_last4

# Mainland mobiles (13812341234, 8613812341234) and E.164 numbers (+8613812341234,
# +14155550123), not inside a longer run of digits (order numbers, ids, timestamps).
PHONE_PATTERN = re.compile(r"(?<![\d+])(?:\+\d{8,15}|(?:86)?1[3-9]\d{9})(?!\d)")


def mask_phones_in(text: str) -> str:
    return PHONE_PATTERN.sub(lambda match: mask_last4(match.group()[-4:]), text)


class MaskPhoneNumbers(logging.Filter):
    """Renders the message with its arguments, masks it, and drops the arguments (a
    masked number no longer fits a %d); the traceback text is masked the same way."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format is the handler's to report
            return True
        record.msg = mask_phones_in(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once set, so the masked text is what gets written.
            record.exc_text = mask_phones_in(logging.Formatter().formatException(record.exc_info))
        return True
