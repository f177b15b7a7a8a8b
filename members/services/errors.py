from __future__ import annotations

from typing import Any


class MemberError(Exception):
    """A refused member operation: `code` is stable (API clients match on it), `message`
    says what to do, and nothing was written."""

    status = 400

    def __init__(self, code: str, message: Any, status: int | None = None) -> None:
        super().__init__(str(message))
        self.code = code
        self.message = message
        if status is not None:
            self.status = status


class NotFound(MemberError):
    status = 404


class Conflict(MemberError):
    status = 409
