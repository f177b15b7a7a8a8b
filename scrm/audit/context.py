"""Who the database triggers record as the actor: session settings on the connection.

The triggers read `scrm.actor_id`, `scrm.actor_label` and `scrm.origin` with
`current_setting(…, true)`. They are set with `set_config(…, false)` (the session, not one
transaction) because a request commits many transactions; so whoever sets them must put
back what was there before, or a persistent connection would carry one request's actor
into the next request or task. Unset, the actor is empty: the system.

These statements go to the driver directly, not through Django's cursor: they are
connection bookkeeping like the driver's own session setup, and counting them would move
every page's query budget by two.

They are sent at once when the connection is open, else as it connects, so a request
that never touches the database (the API schema, a static page) never opens a
connection for them, and a lost database makes no difference until a view needs it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection

SET_ACTOR = (
    "SELECT set_config('scrm.actor_id', %s, false), set_config('scrm.actor_label', %s, false),"
    " set_config('scrm.origin', %s, false)"
)
ORIGIN_LENGTH = 200
LABEL_LENGTH = 150


@dataclass(frozen=True)
class Actor:
    actor_id: int | None = None
    label: str = ""
    origin: str = ""

    @classmethod
    def of(cls, user: Any, origin: str) -> Actor:
        if user is not None and getattr(user, "is_authenticated", False):
            return cls(user.pk, user.get_username(), origin)
        return cls(None, "", origin)


# What this process records when nothing more specific is set: the management command
# it runs, if any (set once at start-up, see `process_origin`).
PROCESS_DEFAULT = Actor()


class _Stack(threading.local):
    """The actors set on this thread's connection (Django's connections are per thread),
    innermost last: a task run eagerly inside a request puts the request's actor back."""

    def __init__(self) -> None:
        self.actors: list[Actor] = []


_stack = _Stack()


def _send(db: Any, actor: Actor) -> None:
    with db.wrap_database_errors:
        db.connection.execute(
            SET_ACTOR,
            (
                "" if actor.actor_id is None else str(actor.actor_id),
                actor.label[:LABEL_LENGTH],
                actor.origin[:ORIGIN_LENGTH],
            ),
        )


def _apply(actor: Actor) -> None:
    """Set `actor` on the open connection now; a closed one gets it as it connects
    (`on_connection_created`)."""
    # Sent every time, not compared with what was sent last: a rolled-back transaction
    # takes its set_config back with it.
    if connection.connection is not None:
        _send(connection, actor)


def push(actor: Actor) -> None:
    """Record `actor` for what this connection writes from now on. Always pair with
    `pop()`, also when this raises (the actor is stacked first, so the pair stays even)."""
    _stack.actors.append(actor)
    _apply(actor)


def pop() -> None:
    """Put back the actor that was set before the matching `push`. A connection that
    cannot be reached keeps nothing worth resetting: it is dropped at the end of the
    request (or task) and the next one connects afresh and sets its own."""
    if _stack.actors:
        _stack.actors.pop()
    with suppress(DatabaseError):
        _apply(current())


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    try:
        push(actor)
        yield
    finally:
        pop()


def current() -> Actor:
    return _stack.actors[-1] if _stack.actors else PROCESS_DEFAULT


def process_origin(argv: list[str]) -> str:
    """`command:<name>` for a management command (`manage.py import_members …`), else ""
    (the web server and workers set their origin per request and per task)."""
    if len(argv) > 1 and argv[0].endswith("manage.py") and argv[1] not in ("runserver", "serve"):
        return f"command:{argv[1]}"
    return ""


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A new session starts with the current actor (for a management command, the
    command as the origin)."""
    _send(connection, current())


def on_task_prerun(sender: Any = None, task: Any = None, **kwargs: Any) -> None:
    """A task acts for nobody (the system) unless it runs inside a request; its name is
    the origin."""
    name = getattr(task, "name", "") or ""
    outer = current()
    push(Actor(outer.actor_id, outer.label, f"task:{name}"))


def on_task_postrun(sender: Any = None, **kwargs: Any) -> None:
    pop()


def configure_process() -> None:
    global PROCESS_DEFAULT
    PROCESS_DEFAULT = Actor(origin=process_origin(sys.argv))
