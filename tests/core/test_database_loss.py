"""A lost database connection (a server restart, a failover) answers 503 with a clear
message and Retry-After — a page in HTML, the API in its own JSON — and the next request
connects again. Through a live server, whose connections go through a relay the test
cuts and restores."""

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

pytestmark = pytest.mark.django_db(transaction=True)


class DatabaseLink:
    """A TCP relay between the application and PostgreSQL: `cut()` closes the listening
    socket and every relayed connection, as a network loss or a server restart does;
    `restore()` listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        # A host starting with / is a folder holding PostgreSQL's Unix socket.
        self.target: str | tuple[str, int] = (
            f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        )
        self.port = 0
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            if isinstance(self.target, str):
                upstream = socket.socket(socket.AF_UNIX)
                upstream.connect(self.target)
            else:
                upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self.listener is not None
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self.sockets = []


@pytest.fixture
def database_link() -> Iterator[DatabaseLink]:
    """The application's new connections go through a relay the test can cut."""
    settings_dict = connections.settings["default"]
    original = dict(settings_dict)
    link = DatabaseLink(original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432))
    settings_dict.update(HOST="127.0.0.1", PORT=str(link.port))
    yield link
    settings_dict.update(HOST=original["HOST"], PORT=original["PORT"])
    link.cut()


def _fetch(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json", "Cookie": "scrm_language=en"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_a_lost_connection_is_a_clear_503_and_the_next_request_recovers(
    database_link: DatabaseLink, live_server: Any
) -> None:
    refresh = f"{live_server.url}/api/v1/auth/refresh"
    assert _fetch(refresh, {"refresh": "no-such-token"})[0] == 401
    database_link.cut()
    status, headers, body = _fetch(refresh, {"refresh": "no-such-token"})
    assert status == 503
    assert headers["Retry-After"] == "30"
    assert json.loads(body)["code"] == "unavailable"
    # The database is back: the next request connects again.
    database_link.restore()
    assert _fetch(refresh, {"refresh": "no-such-token"})[0] == 401

    landing = f"{live_server.url}/q/no-such-code"
    assert _fetch(landing)[0] == 404
    database_link.cut()
    status, headers, page = _fetch(landing)
    assert status == 503
    assert "The database cannot be reached at the moment" in page
    assert "Traceback" not in page and "OperationalError" not in page
    database_link.restore()
    assert _fetch(landing)[0] == 404


def test_other_server_errors_stay_500_without_details() -> None:
    from django.test import RequestFactory

    from scrm.core.views.errors import server_error

    request = RequestFactory().get("/hq/")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(request)
    assert response.status_code == 500
    assert "a bug" not in response.content.decode()
    assert not response.has_header("Retry-After")
