from collections.abc import Iterator

import pytest

from campaigns.gateways import close_outside_connection


@pytest.fixture(autouse=True)
def _close_sandbox_connection() -> Iterator[None]:
    """The sandbox writes on a connection of its own: close it after each test, or the
    test database could not be dropped at the end of the run."""
    yield
    close_outside_connection()
