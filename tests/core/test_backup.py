"""Backup and restore, once for real: dump the database, restore it into a new one, and
every table holds the same rows. Restoring never overwrites a database; bad arguments
are refused and change nothing."""

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.conftest import Org
from tests.members.factories import OrderFactory

pytestmark = pytest.mark.django_db(transaction=True)

RESTORED = "scrm_restore_check"


def _counts(dbname: str) -> dict[str, int]:
    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"] or "localhost",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params.get("PASSWORD") or None,
        dbname=dbname,
        autocommit=True,
    ) as db:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            table: db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # type: ignore[index]
            for table in tables
        }


@pytest.fixture
def restored_name() -> Iterator[str]:
    yield RESTORED
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{RESTORED}" WITH (FORCE)')


def test_a_backup_restores_into_a_new_database_with_every_row(
    org: Org, tmp_path: Path, restored_name: str
) -> None:
    for member in (org.member_of_guide_a1, org.member_b1):
        OrderFactory(member=member)
    dump = tmp_path / "scrm.dump"
    out = StringIO()
    call_command("db_backup", str(dump), stdout=out)
    assert json.loads(out.getvalue())["bytes"] == dump.stat().st_size > 0
    out = StringIO()
    call_command("db_restore", str(dump), "--into", restored_name, stdout=out)
    assert json.loads(out.getvalue())["database"] == restored_name
    source = _counts(connection.settings_dict["NAME"])
    assert source["members_member"] >= 5 and source["members_order"] == 2
    assert _counts(restored_name) == source


def test_bad_arguments_are_refused_and_change_nothing(
    org: Org, tmp_path: Path, restored_name: str
) -> None:
    existing = tmp_path / "taken.dump"
    existing.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="exists already"):
        call_command("db_backup", str(existing))
    assert existing.read_bytes() == b"keep me"
    before = _counts(connection.settings_dict["NAME"])
    # Never over the database in use, nor any existing one.
    with pytest.raises(CommandError, match="exists already"):
        call_command("db_restore", str(existing), "--into", connection.settings_dict["NAME"])
    with pytest.raises(CommandError, match="letters, digits"):
        call_command("db_restore", str(existing), "--into", "x; DROP TABLE members_member")
    with pytest.raises(CommandError, match="No backup file"):
        call_command("db_restore", str(tmp_path / "missing.dump"), "--into", restored_name)
    # Not a backup: pg_restore refuses it and the half-made database is removed.
    with pytest.raises(CommandError):
        call_command("db_restore", str(existing), "--into", restored_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [restored_name])
        assert cursor.fetchone() is None
    assert _counts(connection.settings_dict["NAME"]) == before
