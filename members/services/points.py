"""Points: earn, redeem, reverse, adjust and expire, each exactly once, never below zero.

Every change to an account first takes that account's row lock (`SELECT … FOR UPDATE`),
so changes to one account queue up while different accounts proceed in parallel; lots
are locked too before points leave them, and FOR UPDATE re-reads each as last committed.
Each change is a ledger entry unique per (source, external id): a replay finds the first
entry and changes nothing.

Earning and redeeming are single prepared SQL statements (one round trip, committed on
their own unless the caller holds a transaction): the ledger must keep up with a
mini-program's sign-in rush, and a balance that a cheaper path could skip is exactly the
kind of bug this module exists to prevent. The rarer paths (reverse, expire, the first
points of a new account) take the account lock in one statement and write in the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import EntryKind, PointsKind
from members.services.errors import MemberError, NotFound


class PointsError(MemberError):
    """A refused points change; nothing was written."""


@dataclass(frozen=True)
class PointsResult:
    entry_id: int
    amount: int  # signed, as recorded
    balance: int  # the account's balance after this change (or now, for a replay)
    duplicate: bool = False  # the (source, external id) was applied before: nothing changed


# ---------------------------------------------------------------- internals


def _account(cursor: Any, member_id: int, kind: str, *, lock: bool) -> tuple[int, int] | None:
    cursor.execute(
        "SELECT id, balance FROM members_pointsaccount WHERE member_id = %s AND kind = %s"
        + (" FOR UPDATE" if lock else ""),
        [member_id, kind],
    )
    row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def points_account_lock(cursor: Any, member_id: int, kind: str) -> tuple[int, int]:
    """Lock the member's account of `kind`, creating it on first use."""
    found = _account(cursor, member_id, kind, lock=True)
    if found is not None:
        return found
    cursor.execute("SELECT 1 FROM members_member WHERE id = %s", [member_id])
    if cursor.fetchone() is None:
        raise NotFound("member_not_found", _("No such member."))
    cursor.execute(
        "INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at) "
        "VALUES (%s, %s, 0, now()) ON CONFLICT (member_id, kind) DO NOTHING",
        [member_id, kind],
    )
    found = _account(cursor, member_id, kind, lock=True)
    assert found is not None
    return found


def _replay(cursor: Any, source: str, external_id: str) -> PointsResult | None:
    cursor.execute(
        "SELECT e.id, e.amount, a.balance FROM members_ledgerentry e "
        "JOIN members_pointsaccount a ON a.id = e.account_id "
        "WHERE e.source = %s AND e.external_id = %s",
        [source, external_id],
    )
    row = cursor.fetchone()
    return PointsResult(row[0], row[1], row[2], duplicate=True) if row else None


def _check_key(source: str, external_id: str) -> None:
    if not source or not external_id:
        raise PointsError("points_key_missing", _("A source and a reference are required."))
    if len(source) > 40 or len(external_id) > 120:
        raise PointsError("points_key_too_long", _("The source or reference is too long."))


def _check_amount(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise PointsError("points_amount_invalid", _("Points must be a whole number above 0."))


# Earn: lock the account and add an entry, a lot and the new balance in one statement.
# `a` locks the row; FOR UPDATE returns the newest committed balance even after waiting.
# No row back: the account does not exist yet, or the key was applied before.
_CREDIT_SQL = """
WITH a AS (
    SELECT id, balance FROM members_pointsaccount
    WHERE member_id = %(member)s AND kind = %(account_kind)s FOR UPDATE
), e AS (
    INSERT INTO members_ledgerentry
        (account_id, kind, amount, balance_after, source, external_id, reason, actor_id,
         reverses_id, created_at)
    SELECT a.id, %(kind)s, %(amount)s, a.balance + %(amount)s, %(source)s, %(external_id)s,
           %(reason)s, %(actor)s, NULL, %(now)s
    FROM a
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING id, account_id, amount, balance_after
), l AS (
    INSERT INTO members_pointslot (account_id, entry_id, amount, remaining, expires_at)
    SELECT account_id, id, amount, amount, %(expires_at)s FROM e
), u AS (
    UPDATE members_pointsaccount p SET balance = e.balance_after, updated_at = %(now)s
    FROM e WHERE p.id = e.account_id
)
SELECT id, balance_after FROM e
"""

# Debit, in one statement. `a` locks the account (and returns its newest balance even
# after waiting for another change to commit). `locked` then locks the spendable lots:
# FOR UPDATE re-reads each lot as last committed, so a lot another redemption just
# emptied is skipped. A lot earned by a transaction that committed while this one waited
# is not seen at all: the redemption may be refused a moment early, never overspent.
# Lots go oldest-expiring first (never-expiring last); `upto` is the running total.
_DEBIT_SQL = """
WITH a AS (
    SELECT id, balance FROM members_pointsaccount
    WHERE member_id = %(member)s AND kind = %(account_kind)s FOR UPDATE
), locked AS (
    SELECT id, remaining, expires_at FROM members_pointslot
    WHERE account_id = (SELECT id FROM a) AND remaining > 0
      AND (expires_at IS NULL OR expires_at > %(now)s)
    ORDER BY expires_at NULLS LAST, id
    FOR UPDATE
), lots AS (
    SELECT id, remaining, sum(remaining) OVER (ORDER BY expires_at NULLS LAST, id) AS upto
    FROM locked
), available AS (
    SELECT COALESCE(max(upto), 0) AS total FROM lots
), take AS (
    SELECT id, LEAST(remaining, %(amount)s - (upto - remaining)) AS points
    FROM lots WHERE upto - remaining < %(amount)s
), e AS (
    INSERT INTO members_ledgerentry
        (account_id, kind, amount, balance_after, source, external_id, reason, actor_id,
         reverses_id, created_at)
    SELECT a.id, %(kind)s, -%(amount)s, a.balance - %(amount)s, %(source)s,
           %(external_id)s, %(reason)s, %(actor)s, NULL, %(now)s
    FROM a, available WHERE available.total >= %(amount)s
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING id, account_id, balance_after
), spent AS (
    UPDATE members_pointslot l SET remaining = l.remaining - t.points
    FROM take t, e WHERE l.id = t.id
), moves AS (
    INSERT INTO members_lotspend (entry_id, lot_id, amount)
    SELECT e.id, t.id, -t.points FROM take t, e
), u AS (
    UPDATE members_pointsaccount p SET balance = e.balance_after, updated_at = %(now)s
    FROM e WHERE p.id = e.account_id
)
SELECT (SELECT id FROM a), (SELECT total FROM available), (SELECT id FROM e),
       (SELECT balance_after FROM e)
"""


def _fast_cursor() -> psycopg.Cursor[Any]:
    """A cursor with server-side binding on Django's connection, so the ledger's big
    statements run as prepared statements (`prepare=True`): planning them took as long
    as running them. Outside `atomic` each statement commits alone, which the
    single-statement paths rely on; inside, it joins the caller's transaction."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _credit(
    cursor: psycopg.Cursor[Any],
    *,
    member_id: int,
    account_kind: str,
    kind: str,
    amount: int,
    source: str,
    external_id: str,
    expires_at: datetime | None,
    reason: str,
    actor: Any,
    now: datetime,
) -> tuple[int, int] | None:
    cursor.execute(
        _CREDIT_SQL,
        {
            "member": member_id,
            "account_kind": account_kind,
            "kind": kind,
            "amount": amount,
            "source": source,
            "external_id": external_id,
            "reason": reason[:200],
            "actor": getattr(actor, "pk", None),
            "now": now,
            "expires_at": expires_at,
        },
        prepare=True,
    )
    row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def _debit(
    cursor: psycopg.Cursor[Any],
    *,
    member_id: int,
    account_kind: str,
    kind: str,
    amount: int,
    source: str,
    external_id: str,
    reason: str,
    actor: Any,
    now: datetime,
) -> tuple[int | None, int, int | None, int | None]:
    """(account id, spendable before, entry id, balance after); no entry when the
    account is missing, spendable < amount, or the key was applied before."""
    cursor.execute(
        _DEBIT_SQL,
        {
            "member": member_id,
            "account_kind": account_kind,
            "kind": kind,
            "amount": amount,
            "source": source,
            "external_id": external_id,
            "reason": reason[:200],
            "actor": getattr(actor, "pk", None),
            "now": now,
        },
        prepare=True,
    )
    row = cursor.fetchone()
    assert row is not None  # the statement always returns one row
    account_id, total, entry_id, balance_after = row
    return account_id, total, entry_id, balance_after


# ---------------------------------------------------------------- services


def points_earn(
    *,
    member_id: int,
    kind: str,
    amount: int,
    source: str,
    external_id: str,
    expires_at: datetime | None = None,
    reason: str = "",
    actor: Any = None,
    now: datetime | None = None,
    entry_kind: str = EntryKind.EARN,
) -> PointsResult:
    """Add `amount` points in a new lot. A replayed (source, external id) changes nothing
    and returns the first entry with `duplicate=True`."""
    _check_amount(amount)
    _check_key(source, external_id)
    if kind not in PointsKind.values:
        raise PointsError("points_kind_invalid", _("Unknown points account."))
    now = now or timezone.now()
    params: dict[str, Any] = {
        "member_id": member_id,
        "account_kind": kind,
        "kind": entry_kind,
        "amount": amount,
        "source": source,
        "external_id": external_id,
        "expires_at": expires_at,
        "reason": reason,
        "actor": actor,
        "now": now,
    }
    credited = _credit(_fast_cursor(), **params)  # one statement, one round trip
    if credited is not None:
        return PointsResult(credited[0], amount, credited[1])
    with transaction.atomic(), connection.cursor() as cursor:
        replay = _replay(cursor, source, external_id)
        if replay is not None:
            return replay
        points_account_lock(cursor, member_id, kind)  # the member's first points of this kind
        credited = _credit(_fast_cursor(), **params)
        if credited is None:
            replay = _replay(cursor, source, external_id)
            assert replay is not None, "an open, locked account always takes the credit"
            return replay
        return PointsResult(credited[0], amount, credited[1])


def points_redeem(
    *,
    member_id: int,
    amount: int,
    source: str,
    external_id: str,
    kind: str = PointsKind.ACTIVITY,
    reason: str = "",
    actor: Any = None,
    now: datetime | None = None,
    entry_kind: str = EntryKind.REDEEM,
) -> PointsResult:
    """Spend `amount` points, oldest-expiring lots first. Refused (PointsError, nothing
    written) when fewer points are spendable; a replay returns the first entry."""
    _check_amount(amount)
    _check_key(source, external_id)
    now = now or timezone.now()
    account_id, total, entry_id, balance = _debit(
        _fast_cursor(),  # one statement, one round trip
        member_id=member_id,
        account_kind=kind,
        kind=entry_kind,
        amount=amount,
        source=source,
        external_id=external_id,
        reason=reason,
        actor=actor,
        now=now,
    )
    if entry_id is not None:
        assert balance is not None
        return PointsResult(entry_id, -amount, balance)
    with connection.cursor() as cursor:  # applied before (a replay), or refused
        replay = _replay(cursor, source, external_id)
        if replay is not None:
            return replay
        if account_id is None:
            cursor.execute("SELECT 1 FROM members_member WHERE id = %s", [member_id])
            if cursor.fetchone() is None:
                raise NotFound("member_not_found", _("No such member."))
    raise _short(total, amount)


def _short(available: int, wanted: int) -> PointsError:
    return PointsError(
        "points_insufficient",
        _("Only %(available)s points can be spent; %(wanted)s were asked for.")
        % {"available": available, "wanted": wanted},
        status=409,
    )


def points_adjust(
    *,
    member_id: int,
    kind: str,
    amount: int,
    reason: str,
    actor: Any,
    external_id: str,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> PointsResult:
    """HQ's manual correction: a reason is always required; taking points away never
    takes more than can be spent. Audited (once: a replayed key changes nothing)."""
    from members.models import Member
    from scrm.core.services import audit_record

    reason = (reason or "").strip()
    if not reason:
        raise PointsError("points_reason_required", _("Say why the points are adjusted."))
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise PointsError("points_amount_invalid", _("Enter a whole number of points, not 0."))
    common: dict[str, Any] = {
        "member_id": member_id,
        "kind": kind,
        "source": "adjust",
        "external_id": external_id,
        "reason": reason,
        "actor": actor,
        "now": now,
        "entry_kind": EntryKind.ADJUST,
    }
    with transaction.atomic():
        if amount > 0:
            result = points_earn(amount=amount, expires_at=expires_at, **common)
        else:
            result = points_redeem(amount=-amount, **common)
        if not result.duplicate:
            audit_record(
                actor=actor,
                action="points.adjust",
                target=Member.all_objects.get(pk=member_id),
                data={
                    "kind": kind,
                    "amount": amount,
                    "reason": reason,
                    "entry": result.entry_id,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
    return result


def points_reverse(
    *,
    source: str,
    external_id: str,
    reverse_source: str,
    reverse_external_id: str,
    amount: int | None = None,
    reason: str = "",
    actor: Any = None,
    now: datetime | None = None,
) -> PointsResult | None:
    """Undo (part of) an earlier entry, e.g. the points an order earned when it is
    refunded, or a redemption that is cancelled.

    Reversing an earn takes the points back from that earn's own lot first, then from
    the oldest-expiring others, and never more than can be spent (points already spent
    stay spent). Reversing a redemption returns the points to the lots they came from.
    Returns None when there is nothing left to reverse.
    """
    _check_key(reverse_source, reverse_external_id)
    if amount is not None:
        _check_amount(amount)
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, account_id, kind, amount FROM members_ledgerentry "
            "WHERE source = %s AND external_id = %s",
            [source, external_id],
        )
        original = cursor.fetchone()
        if original is None:
            raise NotFound("points_entry_not_found", _("No such points entry."))
        entry_id, account_id, kind, original_amount = original
        cursor.execute(
            "SELECT id, balance FROM members_pointsaccount WHERE id = %s FOR UPDATE", [account_id]
        )
        _account_id, balance = cursor.fetchone()
        # Checked under the lock, so two concurrent replays cannot both pass.
        replay = _replay(cursor, reverse_source, reverse_external_id)
        if replay is not None:
            return replay
        cursor.execute(
            "SELECT COALESCE(sum(amount), 0) FROM members_ledgerentry WHERE reverses_id = %s",
            [entry_id],
        )
        (reversed_so_far,) = cursor.fetchone()
        left = abs(original_amount) - abs(reversed_so_far)
        wanted = left if amount is None else min(amount, left)
        if wanted <= 0:
            return None
        params = {
            "account": account_id,
            "entry": entry_id,
            "source": reverse_source,
            "external_id": reverse_external_id,
            "reason": reason[:200],
            "actor": getattr(actor, "pk", None),
            "now": now,
        }
        if original_amount < 0:  # a redemption (or negative adjustment): give points back
            return _return_spent(cursor, params, wanted, balance)
        return _take_back_earned(cursor, params, wanted, balance)


def _return_spent(
    cursor: Any, params: dict[str, Any], wanted: int, balance: int
) -> PointsResult | None:
    # Net points each lot gave this entry (minus what earlier reversals returned).
    cursor.execute(
        """
        SELECT s.lot_id, -sum(s.amount) AS given
        FROM members_lotspend s
        JOIN members_ledgerentry e ON e.id = s.entry_id
        WHERE e.id = %(entry)s OR e.reverses_id = %(entry)s
        GROUP BY s.lot_id HAVING -sum(s.amount) > 0
        ORDER BY s.lot_id DESC
        """,
        params,
    )
    moves: list[tuple[int, int]] = []
    need = wanted
    for lot_id, given in cursor.fetchall():
        if need <= 0:
            break
        back = min(given, need)
        moves.append((lot_id, back))
        need -= back
    return _record_reversal(cursor, params, moves, balance)


def _take_back_earned(
    cursor: Any, params: dict[str, Any], wanted: int, balance: int
) -> PointsResult | None:
    # Spendable points, this earn's own lot first; expired-but-not-yet-swept lots are not
    # taken (the expiry sweep removes them).
    cursor.execute(
        """
        WITH lots AS (
            SELECT id, remaining,
                   sum(remaining) OVER (
                       ORDER BY (entry_id = %(entry)s) DESC, expires_at NULLS LAST, id
                   ) AS upto
            FROM members_pointslot
            WHERE account_id = %(account)s AND remaining > 0
              AND (expires_at IS NULL OR expires_at > %(now)s)
        )
        SELECT id, LEAST(remaining, %(wanted)s - (upto - remaining))
        FROM lots WHERE upto - remaining < %(wanted)s
        """,
        {**params, "wanted": wanted},
    )
    moves = [(lot, -points) for lot, points in cursor.fetchall() if points > 0]
    return _record_reversal(cursor, params, moves, balance)


def _record_reversal(
    cursor: Any, params: dict[str, Any], moves: list[tuple[int, int]], balance: int
) -> PointsResult | None:
    """Write a reverse entry moving `moves` (lot, signed points: positive gives back to
    the lot, negative takes from it), the lots' movements and the account's balance."""
    amount = sum(points for _lot, points in moves)
    if amount == 0:
        return None
    cursor.execute(
        """
        INSERT INTO members_ledgerentry
            (account_id, kind, amount, balance_after, source, external_id, reason, actor_id,
             reverses_id, created_at)
        VALUES (%(account)s, 'reverse', %(amount)s, %(balance)s + %(amount)s, %(source)s,
                %(external_id)s, %(reason)s, %(actor)s, %(entry)s, %(now)s)
        RETURNING id
        """,
        {**params, "amount": amount, "balance": balance},
    )
    (new_entry,) = cursor.fetchone()
    cursor.execute(
        """
        WITH p AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS p(lot, points)),
        moved AS (
            UPDATE members_pointslot l SET remaining = l.remaining + p.points
            FROM p WHERE l.id = p.lot
        )
        INSERT INTO members_lotspend (entry_id, lot_id, amount)
        SELECT %s, lot, points FROM p
        """,
        [[lot for lot, _ in moves], [points for _, points in moves], new_entry],
    )
    cursor.execute(
        "UPDATE members_pointsaccount SET balance = balance + %s, updated_at = %s WHERE id = %s",
        [amount, params["now"], params["account"]],
    )
    return PointsResult(new_entry, amount, balance + amount)


def points_expire_due(*, now: datetime | None = None, limit: int = 5_000) -> int:
    """Expire the points left in lots whose date has passed. Each account is locked while
    its lots expire; an entry per lot (`expire`, lot:<id>) makes a second run a no-op.
    Returns how many lots expired; call again while it returns `limit`."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT account_id FROM members_pointslot "
            "WHERE remaining > 0 AND expires_at <= %s LIMIT %s",
            [now, limit],
        )
        accounts = sorted(row[0] for row in cursor.fetchall())
    expired = 0
    for account_id in accounts:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT balance FROM members_pointsaccount WHERE id = %s FOR UPDATE", [account_id]
            )
            (balance,) = cursor.fetchone()
            cursor.execute(
                "SELECT id, remaining FROM members_pointslot "
                "WHERE account_id = %s AND remaining > 0 AND expires_at <= %s ORDER BY id",
                [account_id, now],
            )
            for lot_id, remaining in cursor.fetchall():
                balance -= remaining
                cursor.execute(
                    """
                    WITH e AS (
                        INSERT INTO members_ledgerentry
                            (account_id, kind, amount, balance_after, source, external_id,
                             reason, actor_id, reverses_id, created_at)
                        VALUES (%(account)s, 'expire', -%(points)s, %(balance)s, 'expire',
                                %(key)s, '', NULL, NULL, %(now)s)
                        RETURNING id
                    ), l AS (
                        UPDATE members_pointslot SET remaining = 0 WHERE id = %(lot)s
                    )
                    INSERT INTO members_lotspend (entry_id, lot_id, amount)
                    SELECT id, %(lot)s, -%(points)s FROM e
                    """,
                    {
                        "account": account_id,
                        "points": remaining,
                        "balance": balance,
                        "key": f"lot:{lot_id}",
                        "now": now,
                        "lot": lot_id,
                    },
                )
                expired += 1
            cursor.execute(
                "UPDATE members_pointsaccount SET balance = %s, updated_at = %s WHERE id = %s",
                [balance, now, account_id],
            )
    return expired


# ---------------------------------------------------------------- reads


@dataclass(frozen=True)
class Balances:
    activity: int
    growth: int
    spendable: int  # activity points that can be spent now (excludes expired lots)
    expiring_soon: int  # activity points expiring within `soon_days`
    expiring_at: datetime | None  # the next expiry date among them


def points_balances(
    *, member_id: int, soon_days: int = 30, now: datetime | None = None
) -> Balances:
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT
              COALESCE(max(a.balance) FILTER (WHERE a.kind = 'activity'), 0),
              COALESCE(max(a.balance) FILTER (WHERE a.kind = 'growth'), 0),
              (SELECT COALESCE(sum(l.remaining), 0) FROM members_pointslot l
                 JOIN members_pointsaccount p ON p.id = l.account_id
                WHERE p.member_id = %(member)s AND p.kind = 'activity' AND l.remaining > 0
                  AND (l.expires_at IS NULL OR l.expires_at > %(now)s)),
              (SELECT COALESCE(sum(l.remaining), 0) FROM members_pointslot l
                 JOIN members_pointsaccount p ON p.id = l.account_id
                WHERE p.member_id = %(member)s AND p.kind = 'activity' AND l.remaining > 0
                  AND l.expires_at > %(now)s AND l.expires_at <= %(soon)s),
              (SELECT min(l.expires_at) FROM members_pointslot l
                 JOIN members_pointsaccount p ON p.id = l.account_id
                WHERE p.member_id = %(member)s AND p.kind = 'activity' AND l.remaining > 0
                  AND l.expires_at > %(now)s AND l.expires_at <= %(soon)s)
            FROM members_pointsaccount a WHERE a.member_id = %(member)s
            """,
            {"member": member_id, "now": now, "soon": now + timedelta(days=soon_days)},
        )
        row = cursor.fetchone()
    return Balances(*row)


INVARIANTS_SQL = """
SELECT 'negative balance' AS problem, a.id FROM members_pointsaccount a WHERE a.balance < 0
UNION ALL
SELECT 'balance differs from ledger', a.id FROM members_pointsaccount a
  LEFT JOIN (SELECT account_id, sum(amount) AS total FROM members_ledgerentry
             GROUP BY account_id) e ON e.account_id = a.id
 WHERE a.balance <> COALESCE(e.total, 0)
UNION ALL
SELECT 'balance differs from lots', a.id FROM members_pointsaccount a
  LEFT JOIN (SELECT account_id, sum(remaining) AS total FROM members_pointslot
             GROUP BY account_id) l ON l.account_id = a.id
 WHERE a.balance <> COALESCE(l.total, 0)
UNION ALL
SELECT 'negative lot', l.id FROM members_pointslot l WHERE l.remaining < 0
UNION ALL
SELECT 'lot movements differ from lot', l.id FROM members_pointslot l
  LEFT JOIN (SELECT lot_id, sum(amount) AS total FROM members_lotspend GROUP BY lot_id) s
    ON s.lot_id = l.id
 WHERE l.amount + COALESCE(s.total, 0) <> l.remaining
"""


def points_invariant_violations() -> list[tuple[str, int]]:
    """Every broken promise of the ledger, as (problem, account or lot id). Empty when
    all holds: no negative balance, balance = ledger sum = lots left, and every lot's
    movements add up to what it has left."""
    with connection.cursor() as cursor:
        cursor.execute(INVARIANTS_SQL)
        return [(problem, pk) for problem, pk in cursor.fetchall()]


# ---------------------------------------------------------------- member merges


def _transfer_lots(*, from_account: int, to_account: int, lots: list[int], tag: str) -> list[int]:
    """Move what is left in `lots` (of `from_account`) into new lots of `to_account` with
    the same expiry dates, as paired adjust entries. Returns the new credit entry ids."""
    now = timezone.now()
    credits: list[int] = []
    with connection.cursor() as cursor:
        for account in sorted((from_account, to_account)):  # lock order: by primary key
            cursor.execute(
                "SELECT 1 FROM members_pointsaccount WHERE id = %s FOR UPDATE", [account]
            )
        cursor.execute(
            "SELECT id, remaining, expires_at FROM members_pointslot "
            "WHERE id = ANY(%s) AND account_id = %s AND remaining > 0 ORDER BY id",
            [lots, from_account],
        )
        for lot_id, remaining, expires_at in cursor.fetchall():
            cursor.execute(
                """
                WITH src AS (
                    UPDATE members_pointsaccount SET balance = balance - %(points)s,
                        updated_at = %(now)s
                    WHERE id = %(from)s RETURNING balance
                ), out_entry AS (
                    INSERT INTO members_ledgerentry (account_id, kind, amount, balance_after,
                        source, external_id, reason, created_at)
                    SELECT %(from)s, 'adjust', -%(points)s, balance, 'merge', %(out_key)s,
                        %(reason)s, %(now)s FROM src
                    RETURNING id
                ), emptied AS (
                    UPDATE members_pointslot SET remaining = 0 WHERE id = %(lot)s
                ), out_move AS (
                    INSERT INTO members_lotspend (entry_id, lot_id, amount)
                    SELECT id, %(lot)s, -%(points)s FROM out_entry
                ), dst AS (
                    UPDATE members_pointsaccount SET balance = balance + %(points)s,
                        updated_at = %(now)s
                    WHERE id = %(to)s RETURNING balance
                ), in_entry AS (
                    INSERT INTO members_ledgerentry (account_id, kind, amount, balance_after,
                        source, external_id, reason, created_at)
                    SELECT %(to)s, 'adjust', %(points)s, balance, 'merge', %(in_key)s,
                        %(reason)s, %(now)s FROM dst
                    RETURNING id
                ), new_lot AS (
                    INSERT INTO members_pointslot (account_id, entry_id, amount, remaining,
                        expires_at)
                    SELECT %(to)s, id, %(points)s, %(points)s, %(expires)s FROM in_entry
                )
                SELECT id FROM in_entry
                """,
                {
                    "points": remaining,
                    "now": now,
                    "from": from_account,
                    "to": to_account,
                    "lot": lot_id,
                    "expires": expires_at,
                    "out_key": f"{tag}:out:{lot_id}",
                    "in_key": f"{tag}:in:{lot_id}",
                    "reason": tag[:200],
                },
            )
            credits.append(cursor.fetchone()[0])
    return credits


def points_merge_move(kept: Any, dropped: Any) -> list[int]:
    """Merge mover, first step: an account of a kind the kept member lacks moves over
    whole (its ledger with it). Returns the moved account ids."""
    from members.models import PointsAccount

    taken = set(PointsAccount.objects.filter(member=kept).values_list("kind", flat=True))
    moving = list(
        PointsAccount.objects.filter(member=dropped)
        .exclude(kind__in=taken)
        .values_list("pk", flat=True)
    )
    PointsAccount.objects.filter(pk__in=moving).update(member=kept)
    return moving


def points_merge_restore_move(kept: Any, dropped: Any, account_ids: list[int]) -> None:
    from members.models import PointsAccount

    PointsAccount.objects.filter(pk__in=account_ids, member=kept).update(member=dropped)


def points_merge_transfer(kept: Any, dropped: Any) -> list[int]:
    """Merge mover, second step: where both have an account of a kind, what is left in
    the dropped member's lots moves into the kept member's account, expiry dates kept.
    Returns the credit entry ids (what an undo moves back)."""
    from members.models import PointsAccount, PointsLot

    tag = f"merge:{dropped.pk}>{kept.pk}:{timezone.now().timestamp():.6f}"
    credits: list[int] = []
    for account in PointsAccount.objects.filter(member=dropped):
        target = PointsAccount.objects.get(member=kept, kind=account.kind)
        lots = list(
            PointsLot.objects.filter(account=account, remaining__gt=0).values_list("pk", flat=True)
        )
        credits += _transfer_lots(from_account=account.pk, to_account=target.pk, lots=lots, tag=tag)
    return credits


def points_merge_restore_transfer(kept: Any, dropped: Any, credit_ids: list[int]) -> None:
    """Undo: move back what is still left of the transferred lots (points spent in the
    meantime stay spent)."""
    from members.models import PointsAccount, PointsLot

    tag = f"unmerge:{kept.pk}>{dropped.pk}:{timezone.now().timestamp():.6f}"
    lots = PointsLot.objects.filter(entry_id__in=credit_ids, remaining__gt=0).select_related(
        "account"
    )
    by_kind: dict[str, list[int]] = {}
    for lot in lots:
        by_kind.setdefault(lot.account.kind, []).append(lot.pk)
    for kind, lot_ids in by_kind.items():
        source = PointsAccount.objects.get(member=kept, kind=kind)
        target = PointsAccount.objects.get(member=dropped, kind=kind)
        _transfer_lots(from_account=source.pk, to_account=target.pk, lots=lot_ids, tag=tag)
