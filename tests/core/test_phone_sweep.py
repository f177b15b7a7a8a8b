"""The phone sweep itself: it must see a full number wherever one can leak."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory
from openpyxl import Workbook

from tests import phone_sweep
from tests.phone_sweep import PhoneSweepHandler, PhoneSweepMiddleware, Sink, phones_in


@pytest.fixture
def sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sink:
    """Findings of these tests go to their own folder, not the session's."""
    own = Sink(tmp_path)
    monkeypatch.setattr(phone_sweep, "SINK", own)
    return own


def _found(sink: Sink) -> list[dict[str, object]]:
    return phone_sweep.read_findings(sink.directory)


@pytest.mark.parametrize(
    "text",
    [
        "电话13800001234",
        "+8613800001234",
        "86 13800001234",
        '{"phone": "13912345678"}',
        "name,phone\n王,+86 13800001234\n",
    ],
)
def test_full_numbers_are_seen(text: str) -> None:
    assert len(phones_in(text)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "138****1234",
        "*******1234",
        "POS13800001234",
        "1733512345678",  # a timestamp in milliseconds
        "order 213800001234",
        "12800001234",  # 12x is not a mobile prefix
    ],
)
def test_masked_numbers_and_other_digits_are_not(text: str) -> None:
    assert phones_in(text) == []


def _serve(response: HttpResponse | StreamingHttpResponse) -> HttpResponse:
    request = RequestFactory().get("/hq/members/")
    return PhoneSweepMiddleware(lambda _request: response)(request)  # type: ignore[arg-type,return-value]


def test_pages_json_and_csv_are_searched(sink: Sink) -> None:
    _serve(HttpResponse("<td>13800001234</td>", content_type="text/html; charset=utf-8"))
    _serve(HttpResponse('{"p": "+8613900001234"}', content_type="application/json"))
    _serve(HttpResponse("13700001234".encode("gb18030"), content_type="text/csv; charset=gbk"))
    _serve(HttpResponse(b"\x89PNG 13600001234", content_type="image/png"))
    assert [f["numbers"] for f in _found(sink)] == [["…1234"], ["…1234"], ["…1234"]]


def test_xlsx_exports_are_searched(sink: Sink) -> None:
    book = Workbook()
    book.active.append(["王小美", "+8613800005678"])
    data = io.BytesIO()
    book.save(data)
    _serve(HttpResponse(data.getvalue(), content_type=phone_sweep.XLSX_TYPE))
    assert [f["numbers"] for f in _found(sink)] == [["…5678"]]


def test_streamed_bodies_are_searched_across_chunks(sink: Sink) -> None:
    response = _serve(
        StreamingHttpResponse(iter([b"a,1380000", b"9999\n"]), content_type="text/csv")
    )
    assert b"".join(response.streaming_content) == b"a,13800009999\n"  # type: ignore[attr-defined]
    assert [f["numbers"] for f in _found(sink)] == [["…9999"]]


def test_log_lines_are_searched(sink: Sink) -> None:
    logger = logging.getLogger("scrm.phone_sweep_check")
    handler = PhoneSweepHandler()
    logger.addHandler(handler)
    logger.propagate = False  # only this handler: the session's own sees nothing
    try:
        logger.warning("sent to %s", "13800004321")
        logger.warning("sent to %s", "138****4321")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert [f["numbers"] for f in _found(sink)] == [["…4321"]]


def test_permitted_views_are_not_searched(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phone_sweep, "PERMITTED_PREFIXES", ("/api/v1/me/",))
    request = RequestFactory().get("/api/v1/me/")
    PhoneSweepMiddleware(lambda _r: HttpResponse('{"phone": "13800001234"}'))(request)
    assert _found(sink) == []


def test_a_number_the_request_carried_may_come_back(sink: Sink) -> None:
    """A search or a form being corrected shows the user what they typed: not a leak;
    any other number in the same answer is."""
    request = RequestFactory().get("/m/", {"q": "138 0000 1234"})
    page = "<input value='13800001234'><a href='?q=13800001234&page=2'>2</a><td>13900005678</td>"
    PhoneSweepMiddleware(lambda _r: HttpResponse(page))(request)
    posted = RequestFactory().post("/hq/x/", {"phone": "+8613700002222"})
    PhoneSweepMiddleware(lambda _r: HttpResponse("+8613700002222 is invalid"))(posted)
    assert [f["numbers"] for f in _found(sink)] == [["…5678"]]


def test_a_body_the_view_refused_leaves_its_answer_alone(sink: Sink, settings: object) -> None:
    """The sweep reads the request after the view: a body too big to read must not turn
    the view's own answer into an error."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10  # type: ignore[attr-defined]
    request = RequestFactory().post(
        "/api/v1/events", data=b'{"events": "' + b"x" * 100 + b'"}', content_type="application/json"
    )
    answer = HttpResponse('{"code": "payload_too_large"}', status=413)
    assert PhoneSweepMiddleware(lambda _r: answer)(request) is answer
    assert _found(sink) == []
