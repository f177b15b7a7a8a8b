"""Auto-tag rules: tag whoever matches a rule tree, set-based, and (optionally) untag
whoever this rule tagged and no longer matches. Every change is logged with the rule
as its source. Runs periodically, after order imports, and for one member after their
new order; a preview shows what switching a rule on would do.

A rule on data inferred from behaviour (what was bought or browsed, RFM, the value
matrix: `rules_use_profiling`, as for a broadcast's audience) profiles the members it
tags, so it leaves out members who withdrew profiling consent, and the tags it gave
them come off at its next run whether or not it removes unmatched members (the tag is
itself the profile), logged with the reason. A rule on facts the member gave or the
membership holds (gender, city, store, tier, registration, order counts …) profiles
nobody and tags regardless of that consent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from members.models import AutoTagRule, Member, TagChoice, TagLogReason
from members.segments.rules import parse_rules, profiling_withdrawn_sql, rules_use_profiling
from members.segments.sql import compile_rules
from scrm.core.services import audit_record

RULE_LOCK = 7_305_002


@dataclass
class RuleEffect:
    matching: int
    added: int
    removed: int
    # A profiling rule: members who match it but withdrew profiling consent (left out),
    # and how many of `removed` lose the tag because of the withdrawal.
    left_out: int = 0
    removed_withdrawn: int = 0


def _matching_sql(
    rule: AutoTagRule, now: datetime, member_ids: list[int] | None
) -> tuple[str, list[Any]]:
    """Members matching the rule tree, each with whether the rule must leave them out
    (`id`, `withdrawn`)."""
    members = Member.objects.all()
    if member_ids is not None:
        members = members.filter(pk__in=member_ids)
    members = members.filter(compile_rules(parse_rules(rule.rules), now=now).expression())
    sql, params = members.order_by().values("pk").query.sql_with_params()
    return f"SELECT a.id, {_withdrawn_sql(rule)} FROM ({sql}) AS a(id)", list(params)


def _withdrawn_sql(rule: AutoTagRule) -> str:
    """Whether member `a.id` is out of this rule's reach for withdrawn profiling."""
    return profiling_withdrawn_sql() if rules_use_profiling(rule.rules) else "FALSE"


def auto_tag_rule_preview(*, rule: AutoTagRule, now: datetime | None = None) -> RuleEffect:
    """What a run would do now: members matching (those who withdrew profiling consent
    left out, and counted), to be tagged, to be untagged."""
    now = now or timezone.now()
    matching, params = _matching_sql(rule, now, None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH hit(id, withdrawn) AS MATERIALIZED ({matching}),
            matching AS (SELECT id FROM hit WHERE NOT withdrawn),
            given AS (
                SELECT t.member_id,
                       EXISTS (SELECT 1 FROM members_member a
                               WHERE a.id = t.member_id AND {_withdrawn_sql(rule)}) AS withdrawn
                FROM members_membertag t
                WHERE t.tag_id = %s AND t.source = 'rule' AND t.source_ref = %s)
            SELECT (SELECT count(*) FROM matching),
                   (SELECT count(*) FROM matching x WHERE NOT EXISTS (
                        SELECT 1 FROM members_membertag t
                        WHERE t.member_id = x.id AND t.tag_id = %s)),
                   (SELECT count(*) FROM given g WHERE NOT g.withdrawn
                      AND NOT EXISTS (SELECT 1 FROM matching x WHERE x.id = g.member_id)),
                   (SELECT count(*) FROM hit WHERE withdrawn),
                   (SELECT count(*) FROM given WHERE withdrawn)
            """,
            [*params, rule.tag_id, str(rule.pk or ""), rule.tag_id],
        )
        row = cursor.fetchone() or (0, 0, 0, 0, 0)
    unmatched = row[2] if rule.remove_when_unmatched and rule.pk else 0
    withdrawn = row[4] if rule.pk else 0
    return RuleEffect(
        matching=row[0],
        added=row[1],
        removed=unmatched + withdrawn,
        left_out=row[3],
        removed_withdrawn=withdrawn,
    )


@transaction.atomic
def auto_tag_rule_apply(
    *, rule: AutoTagRule, member_ids: list[int] | None = None, now: datetime | None = None
) -> RuleEffect:
    """Run one rule (over everyone, or only `member_ids`)."""
    now = now or timezone.now()
    matching, params = _matching_sql(rule, now, member_ids)
    ref = str(rule.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RULE_LOCK, rule.pk])
        cursor.execute(
            f"CREATE TEMP TABLE rule_matching (id, withdrawn) ON COMMIT DROP AS {matching}", params
        )
        cursor.execute(
            "SELECT count(*) FILTER (WHERE NOT withdrawn), count(*) FILTER (WHERE withdrawn) "
            "FROM rule_matching"
        )
        count, left_out = cursor.fetchone() or (0, 0)
        if left_out:
            cursor.execute("DELETE FROM rule_matching WHERE withdrawn")
        scope = "" if member_ids is None else "AND mt.member_id = ANY(%s)"
        scope_params = [member_ids] if member_ids is not None else []
        removed_withdrawn = 0
        if rules_use_profiling(rule.rules):
            cursor.execute(
                f"""
                WITH gone AS (
                    DELETE FROM members_membertag mt USING members_member a
                    WHERE a.id = mt.member_id AND mt.tag_id = %s AND mt.source = 'rule'
                      AND mt.source_ref = %s {scope} AND {profiling_withdrawn_sql()}
                    RETURNING mt.member_id
                )
                INSERT INTO members_membertaglog
                    (member_id, tag_id, action, source, source_ref, reason, at)
                SELECT member_id, %s, 'remove', 'rule', %s, %s, %s FROM gone
                """,
                [
                    rule.tag_id,
                    ref,
                    *scope_params,
                    rule.tag_id,
                    ref,
                    TagLogReason.NO_PROFILING.value,
                    now,
                ],
            )
            removed_withdrawn = cursor.rowcount
        if rule.tag.group.choice == TagChoice.SINGLE:
            # One tag per single-choice group: the rule's tag replaces the others.
            cursor.execute(
                """
                WITH gone AS (
                    DELETE FROM members_membertag mt USING members_tag t, rule_matching x
                    WHERE mt.tag_id = t.id AND t.group_id = %s AND t.id <> %s
                      AND mt.member_id = x.id
                    RETURNING mt.member_id, mt.tag_id
                )
                INSERT INTO members_membertaglog
                    (member_id, tag_id, action, source, source_ref, at)
                SELECT member_id, tag_id, 'remove', 'rule', %s, %s FROM gone
                """,
                [rule.tag.group_id, rule.tag_id, ref, now],
            )
        cursor.execute(
            """
            WITH added AS (
                INSERT INTO members_membertag (member_id, tag_id, source, source_ref, added_at)
                SELECT id, %s, 'rule', %s, %s FROM rule_matching
                ON CONFLICT (tag_id, member_id) DO NOTHING
                RETURNING member_id
            )
            INSERT INTO members_membertaglog (member_id, tag_id, action, source, source_ref, at)
            SELECT member_id, %s, 'add', 'rule', %s, %s FROM added
            """,
            [rule.tag_id, ref, now, rule.tag_id, ref, now],
        )
        added = cursor.rowcount
        removed = removed_withdrawn
        if rule.remove_when_unmatched:
            cursor.execute(
                f"""
                WITH gone AS (
                    DELETE FROM members_membertag mt
                    WHERE mt.tag_id = %s AND mt.source = 'rule' AND mt.source_ref = %s {scope}
                      AND NOT EXISTS (SELECT 1 FROM rule_matching x WHERE x.id = mt.member_id)
                    RETURNING mt.member_id
                )
                INSERT INTO members_membertaglog
                    (member_id, tag_id, action, source, source_ref, at)
                SELECT member_id, %s, 'remove', 'rule', %s, %s FROM gone
                """,
                [rule.tag_id, ref, *scope_params, rule.tag_id, ref, now],
            )
            removed += cursor.rowcount
        # Dropped now, not at commit: a caller may run several rules in one transaction.
        cursor.execute("DROP TABLE rule_matching")
    if member_ids is None:
        AutoTagRule.objects.filter(pk=rule.pk).update(
            last_run_at=now, last_added=added, last_removed=removed
        )
    return RuleEffect(
        matching=count,
        added=added,
        removed=removed,
        left_out=left_out,
        removed_withdrawn=removed_withdrawn,
    )


def auto_tag_rules_apply(*, member_ids: list[int] | None = None) -> dict[int, RuleEffect]:
    """Run every switched-on rule (whose tag is active), each in its own transaction."""
    results = {}
    for rule in AutoTagRule.objects.filter(active=True, tag__active=True).select_related(
        "tag__group"
    ):
        results[rule.pk] = auto_tag_rule_apply(rule=rule, member_ids=member_ids)
    return results


@transaction.atomic
def auto_tag_rule_save(*, form: Any, actor: Any) -> AutoTagRule:
    creating = form.instance.pk is None
    rule: AutoTagRule = form.save(commit=False)
    if creating:
        rule.created_by = actor if getattr(actor, "pk", None) else None
    rule.save()
    audit_record(
        actor=actor,
        action="auto_tag_rule.create" if creating else "auto_tag_rule.update",
        target=rule,
        data={"name": rule.name, "tag": rule.tag_id, "active": rule.active, "rules": rule.rules},
    )
    if rule.active:
        transaction.on_commit(lambda: _enqueue(rule.pk))
    return rule


def _enqueue(rule_id: int) -> None:
    from members.tasks import apply_auto_tag_rule

    apply_auto_tag_rule.delay(rule_id)
