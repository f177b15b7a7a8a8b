"""Every registered bench runs at its CI size, prints one JSON line and leaves no rows behind."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from members.models import Member
from scrm.core.bench import BENCHES

pytestmark = pytest.mark.django_db(transaction=True)


def run_ci(name: str) -> dict:
    """Run a bench at its CI size and check the common shape of its one JSON line."""
    out = StringIO()
    call_command("bench", name, ci=True, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["bench"] == name
    assert result["size"] == BENCHES[name].ci_size
    assert result["figures"] and result["baseline"]
    assert result["ratio"] > 0
    assert result["ratio_means"]
    return result


# The ledger bench has its own test below (one run of it takes half a minute).
@pytest.mark.parametrize("name", sorted(set(BENCHES) - {"ledger"}))
def test_bench_prints_one_json_line_with_baseline_and_ratio(name: str) -> None:
    run_ci(name)


def test_seed_members_bench_leaves_no_rows() -> None:
    call_command("bench", "seed_members", size=500, stdout=StringIO())
    assert Member.objects.count() == 0


def test_unknown_bench_and_bad_size_are_refused() -> None:
    with pytest.raises(CommandError, match="unknown bench"):
        call_command("bench", "nope", stdout=StringIO())
    with pytest.raises(CommandError, match="--size"):
        call_command("bench", "seed_members", size=0, stdout=StringIO())


def test_bench_list_names_every_bench() -> None:
    out = StringIO()
    call_command("bench", list=True, stdout=out)
    assert {line.split("\t")[0] for line in out.getvalue().splitlines()} == set(BENCHES)


def test_ledger_bench_checks_the_ledger_and_catches_the_naive_path() -> None:
    result = run_ci("ledger")
    figures, naive = result["figures"], result["baseline"]["naive_read_modify_write"]
    assert figures["ops"] > 0 and figures["errors"] == 0
    assert figures["invariant_violations"] == 0
    assert figures["duplicates_applied_twice"] == 0
    assert figures["points_lost_or_made"] == 0
    assert figures["duplicates_seen"] == figures["resent"] > 0
    # The naive path applies every resent request again.
    assert naive["duplicates_applied_twice"] == naive["resent"] > 0
