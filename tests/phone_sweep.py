"""The suite-wide phone sweep (issue 11): no full phone number in any page, JSON answer,
CSV or XLSX export or log line the test suite produces, outside the permitted views.

Three listeners feed the session's findings folder (`.data/phone-sweep/session-<pid>/`,
one file per process, so live-server threads and Celery worker processes add to it too):
  - `PhoneSweepMiddleware`, first in the test settings' middleware: every response the
    test client or a live server sends — text, JSON, CSV, XLSX (its shared strings),
    streamed bodies included;
  - `PhoneSweepHandler` on the root logger: every log record, formatted;
  - the Celery worker logs the suite's worker processes write (`register_log_file`).
At the end of the session the findings are printed and the run fails if there are any.

Permitted: the views whose purpose is to show a full number to someone allowed to see it
(`PERMITTED_VIEWS`): the audited unmask and the member's own data in the mini-program.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.http.request import RawPostDataException

FINDINGS_ROOT = Path(__file__).resolve().parent.parent / ".data" / "phone-sweep"
# Each test session has its own folder (named in the environment, so the Celery workers
# it starts write there too): two sessions at once never mix or clear each other's.
SESSION_DIR_VARIABLE = "SCRM_PHONE_SWEEP_DIR"


def findings_dir() -> Path:
    return Path(os.environ.get(SESSION_DIR_VARIABLE) or FINDINGS_ROOT / "unnamed")


# A mainland mobile number (with or without +86/0086/86) or any E.164 number with +86,
# not glued to other digits or to letters (an order id like POS13800001234 is not one).
FULL_PHONE = re.compile(r"(?<![0-9A-Za-z_.+])(?:\+?86[ -]?|0086)?1[3-9]\d{9}(?![0-9A-Za-z_])")

# URL names whose answers may carry a full number on purpose: the audited unmask, shown
# to staff with the permission, once.
PERMITTED_VIEWS: set[str] = {"hq:member-phone-reveal", "mobile:customer-phone-reveal"}
# Path prefixes answered for the member themself (their own phone is theirs to see).
PERMITTED_PREFIXES: tuple[str, ...] = ()

TEXT_TYPES = ("text/", "application/json", "application/problem+json", "application/xml")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def mask(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return f"…{digits[-4:]}"


def _current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0] or "(outside a test)"


class Sink:
    """Appends findings as JSON lines to this process's file in `directory`."""

    def __init__(self, directory: Path | None = None) -> None:
        self.fixed = directory

    @property
    def directory(self) -> Path:
        return self.fixed or findings_dir()

    def add(self, where: str, kind: str, numbers: Iterable[str]) -> None:
        found = sorted({mask(n) for n in numbers})
        if not found:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"test": _current_test(), "where": where, "kind": kind, "numbers": found},
            ensure_ascii=False,
        )
        with open(self.directory / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
            out.write(line + "\n")


SINK = Sink()


def phones_in(text: str) -> list[str]:
    return FULL_PHONE.findall(text)


def _xlsx_text(content: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as book:
            return "\n".join(
                book.read(name).decode("utf-8", "replace")
                for name in book.namelist()
                if name.endswith(".xml")
            )
    except zipfile.BadZipFile:
        return ""


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def body_text(content_type: str, content: bytes) -> str | None:
    """The text to search in a response body, or None for bodies that are not ours to
    read (images, fonts, archives a person asked for)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == XLSX_TYPE:
        return _xlsx_text(content)
    if kind.startswith(TEXT_TYPES) or kind.endswith(("+json", "/csv", "javascript")):
        return _decode(content)
    return None


def _permitted(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in PERMITTED_VIEWS:
        return True
    return request.path.startswith(PERMITTED_PREFIXES) if PERMITTED_PREFIXES else False


class _StreamScanner:
    """Searches a streamed body as it goes out, keeping a tail so a number split across
    two chunks is still seen."""

    def __init__(self, chunks: Iterable[bytes], on_done: Callable[[str], None]) -> None:
        self.chunks = chunks
        self.on_done = on_done

    def __iter__(self) -> Iterator[bytes]:
        seen: list[bytes] = []
        for chunk in self.chunks:
            seen.append(chunk if isinstance(chunk, bytes) else str(chunk).encode())
            yield chunk
        self.on_done(_decode(b"".join(seen)))


class PhoneSweepMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if _permitted(request):
            return response
        carried = _carried(request)

        def report(text: str) -> None:
            leaked = [n for n in phones_in(text) if _number_key(n) not in carried]
            SINK.add(where, content_type.split(";")[0], leaked)

        content_type = response.get("Content-Type", "")
        where = f"{request.method} {request.path}"
        if getattr(response, "streaming", False):
            kind = content_type.split(";")[0].strip().lower()
            if kind.startswith(TEXT_TYPES) or kind.endswith("/csv"):
                response.streaming_content = _StreamScanner(  # type: ignore[attr-defined]
                    response.streaming_content,  # type: ignore[attr-defined]
                    report,
                )
            return response
        text = body_text(content_type, response.content)
        if text:
            report(text)
        return response


def _number_key(number: str) -> str:
    return re.sub(r"\D", "", number)[-11:]


def _carried(request: HttpRequest) -> set[str]:
    """Numbers the request itself carried (a search, a form being corrected), in any form
    the product accepts: echoing what the user just typed back to them discloses nothing."""
    from members.phones import try_normalize_phone

    values = [value for key in request.GET for value in request.GET.getlist(key)]
    texts = [unquote_plus(request.META.get("QUERY_STRING", ""))]
    if request.method == "POST":
        # A body the view could not read (too big, multipart already parsed, malformed)
        # is none of the sweep's business: the view's own answer stands.
        with suppress(RawPostDataException, SuspiciousOperation, OSError, ValueError):
            texts.append(_decode(request.body))
        with suppress(SuspiciousOperation, OSError, ValueError, MultiPartParserError):
            values.extend(value for key in request.POST for value in request.POST.getlist(key))
    keys = {_number_key(n) for text in texts for n in phones_in(text)}
    for value in values:
        number = try_normalize_phone(value)
        if number:
            keys.add(_number_key(number))
    return keys


class PhoneSweepHandler(logging.Handler):
    """On the root logger: a full number in any log line is a finding."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot format is not ours to judge
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += f"\n{record.exc_info[1]}"
        SINK.add(f"log {record.name}", "log", phones_in(text))


_LOG_FILES: list[Path] = []


def register_log_file(path: Path) -> None:
    """A worker process's log, searched at the end of the session."""
    _LOG_FILES.append(path)


def read_findings(directory: Path | None = None) -> list[dict[str, Any]]:
    directory = directory or findings_dir()
    findings = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                findings.append(json.loads(line))
    return findings


# --- pytest hooks --------------------------------------------------------------------------


def pytest_configure(config: Any) -> None:
    os.environ[SESSION_DIR_VARIABLE] = str(FINDINGS_ROOT / f"session-{os.getpid()}")
    shutil.rmtree(findings_dir(), ignore_errors=True)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    for path in _LOG_FILES:
        if path.exists():
            SINK.add(
                f"worker log {path.name}", "log", phones_in(path.read_text("utf-8", "replace"))
            )
    findings = read_findings()
    shutil.rmtree(findings_dir(), ignore_errors=True)
    if not findings:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{f['test']}: {f['where']} ({f['kind']}) {', '.join(f['numbers'])}" for f in findings]
    if reporter is not None:
        reporter.section("full phone numbers found by the phone sweep", sep="=", red=True)
        for line in lines[:200]:
            reporter.write_line(line)
        if len(lines) > 200:
            reporter.write_line(f"… and {len(lines) - 200} more")
    if session.exitstatus == 0:
        session.exitstatus = 1
