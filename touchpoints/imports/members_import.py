"""Member rows → the pool, a chunk at a time, set-based.

Per chunk: one query finds every identity the rows name, one query loads the members
they belong to, Python decides each row (new, same person, conflict), then COPY and a
few set-based statements write the result. The decisions follow the identity service's
rules: strong identities (unionid, phone) decide; a conflict goes to the review queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import STRONG_KINDS, IdentityKind, LifecycleStage, MergeSuggestion
from members.services.bulk import allocate_ids, bigint_array, phone_columns
from members.services.lifecycle import lifecycle_refresh_ids
from scrm.audit.services import creations_unrecorded
from scrm.core.pii import previous_keys_configured, previous_phone_digests
from touchpoints.imports import normalize as norm
from touchpoints.imports.copytext import NULL, binary, moment, optional, text, write_lines
from touchpoints.imports.mappings import BUYER_ID_KIND, ID_COLUMNS, IDENTITY_FIELDS

Key = tuple[str, str, str]  # (kind, app, value); a phone's value is its digest
PROFILE = ("name", "gender", "birthday", "city", "home_store_id", "guide_id", "phone")
FIELDS = (
    "phone",
    "buyer_id",
    "name",
    "gender",
    "birthday",
    "city",
    "store_code",
    "guide",
    "registered_at",
)
PRIVATE_KINDS = frozenset({IdentityKind.UNIONID, IdentityKind.OPENID, IdentityKind.WECOM_EXTERNAL})


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    merged: int = 0
    unchanged: int = 0
    rejected: int = 0
    to_review: int = 0
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)
    # Row number → what happened to it; kept only when asked (the admin's small files).
    outcomes: dict[int, str] | None = None

    def outcome(self, row: int, what: str) -> None:
        if self.outcomes is not None:
            self.outcomes[row] = what

    def add_error(self, row: int, column: str, value: str, reason: str) -> None:
        self.errors.append((row, column[:100], value[:200], reason[:300]))


@dataclass
class MemberRow:
    number: int
    keys: list[Key]
    profile: dict[str, Any]
    registered_at: datetime | None
    # The profile as a new member's COPY text (`profile_copy_text`), rendered by the
    # parser's thread; the writer's thread, the import's critical path, renders it only
    # when a later row of the chunk fills in that new member.
    copy_text: str = ""
    registered_text: str = ""  # registered_at as COPY text, when given


@dataclass
class Lookups:
    """What rows may name, loaded once per job: store codes and guide usernames."""

    stores: dict[str, int]
    guides: dict[str, int]
    app_id: str


class MemberRowParser:
    """Parses rows one by one; `safe_row` is the last row fully handed over (parsed or
    rejected), which is what a chunk may record as done."""

    def __init__(
        self, *, source: str, columns: dict[str, int], headers: Sequence[str], lookups: Lookups
    ) -> None:
        self.safe_row = 0
        self.today = timezone.localdate()
        self.source = source
        self.columns = columns
        self.headers = headers
        self.lookups = lookups
        self.buyer_kind = BUYER_ID_KIND.get(source)
        self.id_columns = identity_columns(columns)
        # One list comprehension per row pulls every field at once (the hot path).
        self.field_indexes = [columns.get(name, -1) for name in FIELDS]

    def feed(self, number: int, cells: list[str], counts: Counts, out: list[MemberRow]) -> None:
        row = self.parse(number, cells, counts)
        if row is not None:
            out.append(row)
        self.safe_row = number

    def flush(self, counts: Counts, out: list[MemberRow]) -> None:
        """Members have nothing buffered between rows."""

    def parse(self, number: int, cells: list[str], counts: Counts) -> MemberRow | None:
        errors: list[tuple[str, str, str]] = []
        keys: list[Key] = []
        profile: dict[str, Any] = {}
        size = len(cells)
        phone, buyer, name, gender, birthday, city, store, guide, registered = [
            cells[i].strip() if 0 <= i < size else "" for i in self.field_indexes
        ]

        def fail(field_name: str, value: str, reason: str) -> None:
            errors.append((self.headers[self.columns[field_name]], value, reason))

        if phone:
            try:
                profile["phone"] = e164 = norm.phone(phone)
                key, profile["phone_columns"] = kept_phone(e164)
                keys.append(key)
            except norm.CellError as exc:
                fail("phone", phone, str(exc))
        keys.extend(
            channel_keys(
                cells,
                buyer=buyer,
                buyer_kind=self.buyer_kind,
                app_id=self.lookups.app_id,
                id_columns=self.id_columns,
            )
        )
        if name:
            profile["name"] = name[:50]
        if gender:
            try:
                profile["gender"] = norm.gender(gender)
            except norm.CellError as exc:
                fail("gender", gender, str(exc))
        if birthday:
            try:
                profile["birthday"] = norm.parse_date(birthday)
                if profile["birthday"] > self.today:
                    fail("birthday", birthday, _("The birthday is in the future."))
            except norm.CellError as exc:
                fail("birthday", birthday, str(exc))
        if city:
            profile["city"] = city[:50]
        if store:
            store_id = self.lookups.stores.get(store)
            if store_id is None:
                fail("store_code", store, _("Unknown store code."))
            else:
                profile["home_store_id"] = store_id
        if guide:
            guide_id = self.lookups.guides.get(guide)
            if guide_id is None:
                fail("guide", guide, _("Unknown guide (use the guide's username)."))
            else:
                profile["guide_id"] = guide_id
        registered_at = None
        if registered:
            try:
                registered_at = norm.parse_datetime(registered)
            except norm.CellError as exc:
                fail("registered_at", registered, str(exc))
        if not keys and not errors:
            errors.append(("", "", _("The row names nobody: it has no phone or member id.")))
        if errors:
            counts.rejected += 1
            for column, bad, reason in errors:
                counts.add_error(number, column, bad, reason)
            return None
        return MemberRow(
            number,
            keys,
            profile,
            registered_at,
            profile_copy_text(
                profile.get("name"),
                profile.get("gender"),
                profile.get("birthday"),
                profile.get("phone_columns"),
                profile.get("city"),
                profile.get("home_store_id"),
                profile.get("guide_id"),
            ),
            moment(registered_at) if registered_at is not None else "",
        )


PhoneColumns = tuple[str, str, bytes | None]  # digest, last four, sealed copy
NO_PHONE: PhoneColumns = ("", "", None)


def profile_copy_text(
    name: str | None,
    gender: str | None,
    birthday: date | None,
    phone_columns: PhoneColumns | None,
    city: str | None,
    home_store_id: int | None,
    guide_id: int | None,
) -> str:
    """A new member's profile columns as COPY text, in NEW_MEMBER_COLUMNS' order."""
    digest, last4, sealed = phone_columns or NO_PHONE
    return (
        f"{text(name or '')}\t{gender or 'u'}\t{moment(birthday)}\t{digest}\t{last4}\t"
        f"{binary(sealed)}\t{text(city or '')}\t{optional(home_store_id)}\t{optional(guide_id)}"
    )


def kept_phone(e164: str) -> tuple[Key, PhoneColumns]:
    """A normalised phone as the identity key stored for it (its keyed digest) and the
    member columns that keep it. Parsers call this, in their own thread: the writer's
    thread is the import's critical path; the seal is used if the row makes a new member."""
    kept = phone_columns(e164)
    return (IdentityKind.PHONE, "", kept[0]), kept


def identity_columns(columns: dict[str, int]) -> list[tuple[int, str]]:
    """(column index, identity kind) for the generic template's id columns in a file."""
    return [(columns[name], kind) for name, kind in ID_COLUMNS.items() if name in columns]


def channel_keys(
    cells: list[str],
    *,
    buyer: str,
    buyer_kind: str | None,
    app_id: str,
    id_columns: list[tuple[int, str]],
) -> list[Key]:
    """The identities a row names besides its phone: the source's buyer id (an openid
    belongs to the mini-program's app) and any id columns. Shared by member and order rows."""
    keys: list[Key] = []
    if buyer and buyer_kind:
        keys.append((buyer_kind, app_id if buyer_kind == IdentityKind.OPENID else "", buyer[:128]))
    size = len(cells)
    for index, kind in id_columns:
        value = cells[index].strip() if index < size else ""
        if value:
            keys.append((kind, "", value[:128]))
    return keys


def required_member_columns(columns: dict[str, int]) -> list[str]:
    """Fields missing for a member file: at least one identity column is needed."""
    return [] if IDENTITY_FIELDS & set(columns) else ["phone"]


def _previous_phone_keys(rows: Iterable[MemberRow]) -> dict[Key, Key]:
    """During a key rotation: each phone key under a previous key → the row's current
    one, so rows not yet rotated are found. Empty (and nothing computed) otherwise."""
    if not previous_keys_configured():
        return {}
    aliases: dict[Key, Key] = {}
    for row in rows:
        phone = row.profile.get("phone")
        if phone:
            current = (IdentityKind.PHONE, "", row.profile["phone_columns"][0])
            for digest in previous_phone_digests(phone):
                aliases[(IdentityKind.PHONE, "", digest)] = current
    return aliases


def _find(keys: Iterable[Key], aliases: dict[Key, Key] | None = None) -> dict[Key, int]:
    """Which live member holds each key. The keys go in by COPY (fast, in C), not as
    query parameters, then one indexed join answers for all of them. A row found by an
    alias (a previous key's digest) answers for the key it stands for."""
    aliases = aliases or {}
    unique = set(keys) | aliases.keys()
    if not unique:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_keys (kind text, app text, "
            "value text) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY import_keys (kind, app, value) FROM STDIN") as copy:
            write_lines(
                copy, (f"{kind}\t{text(app)}\t{text(value)}\n" for kind, app, value in unique)
            )
        # A chunk's keys are few next to the pool: look each one up in the index. Left to
        # itself the planner hashes the whole identity table instead, every chunk. In
        # index order, consecutive lookups share pages (digests are random: unsorted,
        # each lookup lands somewhere else in an index larger than the buffer cache).
        cursor.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        cursor.execute(
            """
            SELECT i.kind, i.app, i.value, i.member_id
            FROM (SELECT kind, app, value FROM import_keys ORDER BY value, kind, app) k
            JOIN members_identity i ON i.kind = k.kind AND i.app = k.app AND i.value = k.value
            """
        )
        found = {(kind, app, value): member for kind, app, value, member in cursor.fetchall()}
        # A merged member answers through the member it was merged into. Only the few
        # merged ones are read (member_merged_idx): joining every found member's row cost
        # as much as finding the identities.
        cursor.execute(
            "SELECT id, merged_into_id FROM members_member "
            "WHERE merged_into_id IS NOT NULL AND id = ANY(%s::bigint[])",
            [bigint_array(set(found.values()))],
        )
        merged = dict(cursor.fetchall())
        if merged:
            found = {key: merged.get(member, member) for key, member in found.items()}
        for alias, key in aliases.items():
            # The current digest's row wins when both exist.
            if alias in found:
                found.setdefault(key, found.pop(alias))
        cursor.execute("SET LOCAL enable_hashjoin = on; SET LOCAL enable_mergejoin = on")
        cursor.execute("DELETE FROM import_keys")
        return found


def _load(member_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    ids = list(set(member_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            # A known member's "phone" is its digest: only blank or not matters here.
            "SELECT id, name, gender, birthday, city, home_store_id, guide_id, phone_digest, "
            "member_since FROM members_member WHERE id = ANY(%s)",
            [ids],
        )
        return {
            row[0]: dict(zip(("id", *PROFILE, "member_since"), row, strict=True))
            for row in cursor.fetchall()
        }


def _blank(field_name: str, value: Any) -> bool:
    return value in (None, "") or (field_name == "gender" and value == "u")


def import_member_chunk(
    rows: list[MemberRow],
    *,
    source: str,
    counts: Counts,
    now: datetime | None = None,
    joining: bool = True,
    record_creations: bool = True,
) -> dict[int, int]:
    """Apply one chunk of parsed rows inside the caller's transaction.

    Without `record_creations` (an import job, which records what it created) the members
    and identities created are not copied into the audit trail.

    Returns row number → member id for the rows that resolved. With `joining` (member
    files) a row with a phone makes the person a member; order buyers (joining=False)
    who are new to the pool arrive as prospects.
    """
    resolved: dict[int, int] = {}
    if not rows:
        return resolved
    now = now or timezone.now()
    found = _find((key for row in rows for key in row.keys), _previous_phone_keys(rows))
    # Order buyers never change an existing member's profile, so only member files load it.
    states = _load(found.values()) if joining else {}
    new_members: dict[int, dict[str, Any]] = {}
    links: list[tuple[int, Key, str]] = []  # (member, key, hint: a phone's last four)

    def link(member_id: int, key: Key, row: MemberRow) -> None:
        found[key] = member_id
        hint = row.profile["phone"][-4:] if key[0] == IdentityKind.PHONE else ""
        links.append((member_id, key, hint))

    dirty: set[int] = set()
    pairs: set[tuple[int, int]] = set()
    guided: set[int] = set()  # members this chunk gives a guide: their history gets a row
    unknown = sum(1 for row in rows if not any(key in found for key in row.keys))
    with connection.cursor() as cursor:
        # Only rows naming nobody known can become new members: reserve that many ids.
        pool = iter(allocate_ids(cursor, "members_member", unknown))

    for row in rows:
        strong = {found[k] for k in row.keys if k in found and k[0] in STRONG_KINDS}
        weak = {found[k] for k in row.keys if k in found and k[0] not in STRONG_KINDS}
        if len(strong) > 1 or (not strong and len(weak) > 1):
            members = sorted(strong or weak)
            pairs.update((members[0], other) for other in members[1:])
            counts.to_review += 1
            counts.outcome(row.number, "review")
            counts.add_error(
                row.number,
                "",
                "",
                _("Identities name different members; sent to the duplicate review queue."),
            )
            continue
        member_id = next(iter(strong or weak), None)
        if member_id is not None and strong:
            for other in weak:
                if other != member_id:
                    pairs.add((min(member_id, other), max(member_id, other)))
        if member_id is None:
            member_id = next(pool)
            resolved[row.number] = member_id
            fresh = {name: row.profile.get(name) for name in PROFILE}
            fresh["phone_columns"] = row.profile.get("phone_columns")
            joined = joining and bool(row.profile.get("phone"))
            fresh["member_since"] = (row.registered_at or now) if joined else None
            fresh["created_at"] = row.registered_at or now
            fresh["private"] = any(key[0] in PRIVATE_KINDS for key in row.keys)
            fresh["copy_text"] = row.copy_text
            fresh["created_text"] = row.registered_text
            new_members[member_id] = fresh
            states[member_id] = fresh
            if fresh.get("guide_id"):
                guided.add(member_id)
            for key in row.keys:
                link(member_id, key, row)
            counts.created += 1
            counts.outcome(row.number, "created")
            continue
        resolved[row.number] = member_id
        state = states.get(member_id)
        if state is None:  # an order buyer already in the pool: link new ids only
            linked = [key for key in row.keys if key not in found]
            for key in linked:
                link(member_id, key, row)
            counts.merged += bool(linked)
            counts.unchanged += not linked
            counts.outcome(row.number, "merged" if linked else "unchanged")
            continue
        linked = [key for key in row.keys if key not in found]
        for key in linked:
            link(member_id, key, row)
        if member_id in new_members and any(key[0] in PRIVATE_KINDS for key in linked):
            state["private"] = True
        changed = False
        for name in PROFILE:
            value = row.profile.get(name)
            if value not in (None, "") and _blank(name, state.get(name)):
                state[name] = value
                changed = True
                state["copy_text"] = ""  # rendered again from the state, if it is new
                if name == "guide_id":
                    guided.add(member_id)
                elif name == "phone":
                    state["phone_columns"] = row.profile.get("phone_columns")
        if joining and row.profile.get("phone") and state.get("member_since") is None:
            state["member_since"] = row.registered_at or now
            changed = True
        if changed and member_id not in new_members:
            dirty.add(member_id)
        if linked:
            counts.merged += 1
            counts.outcome(row.number, "merged")
        elif changed and member_id not in new_members:
            counts.updated += 1
            counts.outcome(row.number, "updated")
        else:
            counts.unchanged += 1
            counts.outcome(row.number, "unchanged")

    _write(
        source=source,
        now=now,
        record_creations=record_creations,
        new_members=new_members,
        links=links,
        updates=[states[i] for i in dirty],
        pairs=pairs,
    )
    if guided:
        _record_guides({i: states[i] for i in sorted(guided)}, now)
    # New members got their stage at insert; existing ones that changed are recomputed.
    touched = {*dirty, *(link[0] for link in links if link[0] not in new_members)}
    lifecycle_refresh_ids(ids=sorted(touched), reason=f"import from {source}", now=now)
    return resolved


def _record_guides(states: dict[int, dict[str, Any]], now: datetime) -> None:
    """Every change of a member's guide is kept with its reason: here, the import."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO members_guideassignment "
            "(member_id, to_guide_id, store_id, reason, note, created_at) "
            "SELECT id, guide_id, store_id, 'import', '', %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS u(id, guide_id, store_id)",
            [
                now,
                list(states),
                [s["guide_id"] for s in states.values()],
                [s["home_store_id"] for s in states.values()],
            ],
        )


def _new_stage(state: dict[str, Any]) -> str:
    if state["member_since"] is not None:
        return LifecycleStage.MEMBER
    if state.get("private"):
        return LifecycleStage.PRIVATE
    return LifecycleStage.PROSPECT


def _write(
    *,
    source: str,
    now: datetime,
    record_creations: bool,
    new_members: dict[int, dict[str, Any]],
    links: list[tuple[int, Key, str]],
    updates: list[dict[str, Any]],
    pairs: set[tuple[int, int]],
) -> None:
    with connection.cursor() as cursor:
        with nullcontext() if record_creations else creations_unrecorded(cursor):
            if new_members:
                at = moment(now)
                with cursor.copy(
                    f"COPY members_member ({', '.join(NEW_MEMBER_COLUMNS)}) FROM STDIN"
                ) as copy:
                    write_lines(copy, _member_lines(new_members, at, text(source)))
            if links:
                _link(cursor, links, source, now)
        if updates:
            _update(cursor, updates, now)
    if pairs:
        MergeSuggestion.objects.bulk_create(
            [
                MergeSuggestion(
                    member_a_id=a, member_b_id=b, reason="import: identities name different members"
                )
                for a, b in sorted(pairs)
                if a != b
            ],
            ignore_conflicts=True,
        )


def _update(cursor: Any, updates: list[dict[str, Any]], now: datetime) -> None:
    """Fill in known members: their new values go in by COPY (adapting eleven Python lists
    into arrays cost more than the update itself), then one UPDATE."""
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS import_updates (id bigint, name text, gender text, "
        "birthday date, city text, home_store_id bigint, guide_id bigint, phone_digest text, "
        "phone_last4 text, phone_sealed bytea, member_since timestamptz) ON COMMIT DELETE ROWS"
    )
    with cursor.copy("COPY import_updates FROM STDIN") as copy:
        write_lines(copy, _update_lines(updates))
    # Its row count for the planner: by primary key for a few members, a hash join when
    # they are a large share of the pool. (Join methods cannot be forced here: the audit
    # trigger's pairing of old and new rows runs inside this statement.)
    cursor.execute("ANALYZE import_updates")
    cursor.execute(
        """
        UPDATE members_member m SET
            name = u.name, gender = u.gender, birthday = u.birthday, city = u.city,
            home_store_id = u.home_store_id, guide_id = u.guide_id,
            phone_digest = u.phone_digest,
            phone_last4 = COALESCE(u.phone_last4, m.phone_last4),
            phone_sealed = COALESCE(u.phone_sealed, m.phone_sealed),
            member_since = u.member_since, updated_at = %s
        FROM import_updates AS u
        WHERE m.id = u.id
        """,
        [now],
    )
    cursor.execute("DELETE FROM import_updates")


def _update_lines(updates: list[dict[str, Any]]) -> Iterator[str]:
    """COPY lines for `_update`'s temporary table, in its column order."""
    for row in zip(*_columns(updates), strict=True):
        member_id, name, gender, birthday, city, store, guide = row[:7]
        digest, last4, sealed, since = row[7:]
        yield (
            f"{member_id}\t{text(name)}\t{text(gender)}\t{moment(birthday)}\t{text(city)}\t"
            f"{optional(store)}\t{optional(guide)}\t{text(digest)}\t"
            f"{NULL if last4 is None else text(last4)}\t{binary(sealed)}\t{moment(since)}\n"
        )


NEW_MEMBER_COLUMNS = (
    "id",
    "name",
    "gender",
    "birthday",
    "phone_digest",
    "phone_last4",
    "phone_sealed",
    "city",
    "home_store_id",
    "guide_id",
    "lifecycle_stage",
    "stage_changed_at",
    "source_channel",
    "member_since",
    "created_at",
    "updated_at",
)


def _member_lines(new_members: dict[int, dict[str, Any]], at: str, source: str) -> Iterator[str]:
    """COPY lines for new members, in NEW_MEMBER_COLUMNS' order."""
    for member_id, s in new_members.items():
        s["stage"] = _new_stage(s)
        profile = s.get("copy_text") or profile_copy_text(
            s["name"],
            s["gender"],
            s["birthday"],
            s.get("phone_columns"),
            s["city"],
            s["home_store_id"],
            s["guide_id"],
        )
        created = s.get("created_text") or moment(s["created_at"])
        # A member joins when registered: usually the same moment, formatted once.
        since = created if s["member_since"] is s["created_at"] else moment(s["member_since"])
        yield f"{member_id}\t{profile}\t{s['stage']}\t{at}\t{source}\t{since}\t{created}\t{at}\n"


def _link_lines(links: list[tuple[int, Key, str]], tail: str) -> Iterator[str]:
    for member_id, (kind, app, value), hint in links:
        yield f"{member_id}\t{kind}\t{text(app)}\t{text(value)}\t{hint}{tail}"


def _link(cursor: Any, links: list[tuple[int, Key, str]], source: str, now: datetime) -> None:
    """COPY the new identities straight in. Only if another request linked one of them
    meanwhile (a unique violation) take the slower path that skips those."""
    from django.db import IntegrityError, transaction

    try:
        with (
            transaction.atomic(),
            cursor.copy(
                "COPY members_identity (member_id, kind, app, value, hint, source, created_at) "
                "FROM STDIN"
            ) as copy,
        ):
            write_lines(copy, _link_lines(links, f"\t{text(source)}\t{moment(now)}\n"))
        return
    except IntegrityError:
        pass
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS import_links (member_id bigint, "
        "kind text, app text, value text, hint text) ON COMMIT DELETE ROWS"
    )
    with cursor.copy("COPY import_links (member_id, kind, app, value, hint) FROM STDIN") as copy:
        write_lines(copy, _link_lines(links, "\n"))
    cursor.execute(
        "INSERT INTO members_identity (member_id, kind, app, value, hint, source, created_at) "
        "SELECT member_id, kind, app, value, hint, %s, %s FROM import_links "
        "ON CONFLICT (kind, app, value) DO NOTHING",
        [source, now],
    )
    cursor.execute("DELETE FROM import_links")


def _columns(updates: list[dict[str, Any]]) -> list[list[Any]]:
    names = ("id", "name", "gender", "birthday", "city", "home_store_id", "guide_id")
    blank_text = {"name", "gender", "city"}
    columns = [
        [
            (u.get(n) or ("u" if n == "gender" else "")) if n in blank_text else u.get(n)
            for u in updates
        ]
        for n in names
    ]
    # A number this chunk gives the member comes with its columns (from the parser);
    # otherwise "phone" is the digest already stored, and NULLs keep what is stored.
    digests: list[str] = []
    hints: list[str | None] = []
    sealed: list[bytes | None] = []
    for u in updates:
        kept = u.get("phone_columns")
        if kept:
            digests.append(kept[0])
            hints.append(kept[1])
            sealed.append(kept[2])
        else:
            digests.append(u.get("phone") or "")
            hints.append(None)
            sealed.append(None)
    return [*columns, digests, hints, sealed, [u.get("member_since") for u in updates]]


def lookups_for_import() -> Lookups:
    from django.conf import settings

    from scrm.org.models import Staff, Store

    return Lookups(
        stores=dict(Store.objects.values_list("code", "pk")),
        guides=dict(
            Staff.objects.filter(role="guide", is_active=True).values_list("username", "pk")
        ),
        app_id=getattr(settings, "WECHAT_APP_ID", "") or "sandbox-mini-program",
    )
