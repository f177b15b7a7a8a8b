"""Trigger-based history on the audited tables, and an append-only audit table.

One generic PL/pgSQL function serves every audited table. Its triggers are statement-level
with transition tables, so a bulk UPDATE or a COPY of a million rows writes its audit rows
with one set-based INSERT … SELECT instead of a PL/pgSQL call per row. Rows are read as
jsonb, so a renamed or added column needs no change here.

Per table the triggers are given (as trigger arguments):
  0. the member the row is about: the column holding it, 'points_account' for a ledger
     entry (its account's member), '' for staff and broadcasts;
  1. the columns never recorded (a password hash) or whose change alone is not worth an
     event (updated_at, figures recomputed from orders);
  2. the key columns: the row id shown, and how old and new rows of an UPDATE are paired;
  3. on INSERT, the only columns recorded ('' for all): the import's high-volume tables
     record who created which row, not a second copy of every imported row.

The actor comes from the session settings `scrm.actor_id`, `scrm.actor_label` and
`scrm.origin`, set per request by `scrm.audit.middleware.AuditActorMiddleware`, per task
and per management command (`scrm.audit.context`).
"""

from django.db import migrations

RECORD_CHANGES = r"""
-- The row id shown: a one-column key is its value; a composite key reads "staff 3 · group 2".
-- PL/pgSQL rather than SQL functions here: their plans are kept for the session, where a
-- SQL function with a subquery was planned again on every statement.
CREATE FUNCTION audit_row_key(r jsonb, key_columns text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    parts text[] := '{}';
    c text;
BEGIN
    IF cardinality(key_columns) = 1 THEN
        RETURN left(r->>key_columns[1], 64);
    END IF;
    FOREACH c IN ARRAY key_columns LOOP
        parts := parts || (regexp_replace(c, '_id$', '') || ' ' || (r->>c));
    END LOOP;
    RETURN left(array_to_string(parts, ' · '), 64);
END $$;

-- The member a row is about: a column of the row, or for a points ledger entry the member
-- of its account; '' for rows about no member (staff, broadcasts).
CREATE FUNCTION audit_member_id(r jsonb, rule text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF rule = '' THEN
        RETURN NULL;
    ELSIF rule = 'points_account' THEN
        RETURN (SELECT a.member_id FROM members_pointsaccount AS a
                 WHERE a.id = (r->>'account_id')::bigint);
    END IF;
    RETURN (r->>rule)::bigint;
END $$;

CREATE FUNCTION audit_record_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    member_rule text := TG_ARGV[0];
    excluded text[] := TG_ARGV[1]::text[];
    key_columns text[] := TG_ARGV[2]::text[];
    insert_columns text[] := nullif(TG_ARGV[3], '')::text[];
    actor_id bigint := nullif(current_setting('scrm.actor_id', true), '')::bigint;
    actor_label text := coalesce(current_setting('scrm.actor_label', true), '');
    origin text := coalesce(current_setting('scrm.origin', true), '');
    -- The usual cases are written out in the statements below: a function call per row
    -- was most of a bulk insert's cost.
    single_key boolean := cardinality(key_columns) = 1;
    member_column boolean := member_rule NOT IN ('', 'points_account');
    pair_on text;
    old_values text;
    new_values text;
BEGIN
    -- An import job records the rows it creates itself (the job: who, which file, how
    -- many), and sets scrm.audit_inserts to 'off' for its chunks: copying every row of a
    -- million-row file into the trail doubled the import's database work. Its updates
    -- and deletes are recorded as any others.
    IF TG_OP = 'INSERT' AND current_setting('scrm.audit_inserts', true) = 'off' THEN
        RETURN NULL;
    END IF;
    -- Static statements (planned once per table and session) serve the usual one-row
    -- writes; only a large UPDATE builds its statement from the catalogue, see below.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit_auditevent
            (action, "table", row_id, member_id, actor_id, actor_label, old, new, origin)
        SELECT 'insert', TG_TABLE_NAME, CASE WHEN single_key THEN left(r->>key_columns[1], 64)
                    ELSE audit_row_key(r, key_columns) END,
               CASE WHEN member_column THEN (r->>member_rule)::bigint
                    WHEN member_rule = '' THEN NULL
                    ELSE audit_member_id(r, member_rule) END, actor_id, actor_label, NULL,
               CASE WHEN insert_columns IS NULL THEN r - excluded
                    ELSE (SELECT jsonb_object_agg(c, r->c) FROM unnest(insert_columns) AS c)
               END,
               origin
          FROM (SELECT to_jsonb(t) AS r FROM audit_new_rows AS t) AS s;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit_auditevent
            (action, "table", row_id, member_id, actor_id, actor_label, old, new, origin)
        SELECT 'delete', TG_TABLE_NAME, CASE WHEN single_key THEN left(r->>key_columns[1], 64)
                    ELSE audit_row_key(r, key_columns) END,
               CASE WHEN member_column THEN (r->>member_rule)::bigint
                    WHEN member_rule = '' THEN NULL
                    ELSE audit_member_id(r, member_rule) END, actor_id, actor_label, r - excluded, NULL,
               origin
          FROM (SELECT to_jsonb(t) AS r FROM audit_old_rows AS t) AS s;
    ELSIF (SELECT count(*) FROM (SELECT FROM audit_new_rows LIMIT 101) AS c) <= 100 THEN
        INSERT INTO audit_auditevent
            (action, "table", row_id, member_id, actor_id, actor_label, old, new, origin)
        SELECT 'update', TG_TABLE_NAME, p.row_key, audit_member_id(p.r, member_rule),
               actor_id, actor_label, d.old, d.new, origin
          FROM (SELECT o.r AS o, n.r AS r, n.row_key
                  FROM (SELECT r, audit_row_key(r, key_columns) AS row_key
                          FROM (SELECT to_jsonb(t) AS r FROM audit_old_rows AS t) AS s) AS o
                  JOIN (SELECT r, audit_row_key(r, key_columns) AS row_key
                          FROM (SELECT to_jsonb(t) AS r FROM audit_new_rows AS t) AS s) AS n
                    ON n.row_key = o.row_key) AS p
         CROSS JOIN LATERAL (
               SELECT jsonb_object_agg(e.key, p.o->e.key) AS old,
                      jsonb_object_agg(e.key, e.value) AS new
                 FROM jsonb_each(p.r) AS e
                WHERE NOT (e.key = ANY(excluded)) AND e.value IS DISTINCT FROM p.o->e.key
         ) AS d
         WHERE d.new IS NOT NULL;
    ELSE
        -- A bulk UPDATE (an import's order figures, a nightly refresh): pair old and new rows
        -- on their key columns and drop the pairs whose recorded columns are all equal
        -- before any row becomes jsonb. The column lists come from the catalogue at run
        -- time, so a renamed or added column needs no change here.
        SELECT string_agg(format('o.%I = n.%I', c, c), ' AND ')
          INTO pair_on FROM unnest(key_columns) AS c;
        SELECT string_agg(format('o.%I', attname), ', ' ORDER BY attnum),
               string_agg(format('n.%I', attname), ', ' ORDER BY attnum)
          INTO old_values, new_values
          FROM pg_attribute
         WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped
           AND NOT (attname = ANY(excluded));
        EXECUTE format(
            'INSERT INTO audit_auditevent
                 (action, "table", row_id, member_id, actor_id, actor_label, old, new, origin)
             SELECT ''update'', %L, audit_row_key(p.r, $4), audit_member_id(p.r, $5),
                    $1, $2, d.old, d.new, $3
               FROM (SELECT to_jsonb(o) AS o, to_jsonb(n) AS r
                       FROM audit_old_rows AS o JOIN audit_new_rows AS n ON %s
                      WHERE ROW(%s) IS DISTINCT FROM ROW(%s)) AS p
              CROSS JOIN LATERAL (
                    SELECT jsonb_object_agg(e.key, p.o->e.key) AS old,
                           jsonb_object_agg(e.key, e.value) AS new
                      FROM jsonb_each(p.r) AS e
                     WHERE NOT (e.key = ANY($6)) AND e.value IS DISTINCT FROM p.o->e.key
              ) AS d
              WHERE d.new IS NOT NULL',
            TG_TABLE_NAME, pair_on, old_values, new_values)
        USING actor_id, actor_label, origin, key_columns, member_rule, excluded;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only scrub_member_history() (erasing a member's personal data) may change the trail,
    -- and it says so with SET LOCAL scrm.audit_scrub = 'on' in its own transaction.
    IF current_setting('scrm.audit_scrub', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER auditevent_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"""

DROP_RECORD_CHANGES = """
DROP TRIGGER auditevent_append_only ON audit_auditevent;
DROP FUNCTION audit_append_only();
DROP FUNCTION audit_record_changes();
DROP FUNCTION audit_member_id(jsonb, text);
DROP FUNCTION audit_row_key(jsonb, text[]);
"""

MEMBER_ID = "member_id"

# table: (member expression, excluded columns, key columns, columns recorded on insert)
AUDITED: dict[str, tuple[str, list[str], list[str], list[str] | None]] = {
    # The order figures and the lifecycle stage are recomputed from orders and kept with
    # their own history (members_lifecyclechange); every order import would otherwise
    # write an event per buyer.
    "members_member": (
        "id",
        [
            "updated_at",
            "order_count",
            "total_spent",
            "first_order_at",
            "last_order_at",
            "lifecycle_stage",
            "stage_changed_at",
            # Ciphertext, new on every sealing: the digest and last four record a change.
            "phone_sealed",
        ],
        ["id"],
        None,
    ),
    "members_identity": (MEMBER_ID, [], ["id"], None),
    "members_pointsaccount": (MEMBER_ID, ["updated_at"], ["id"], None),
    "members_ledgerentry": ("points_account", [], ["id"], None),
    "members_membertier": (MEMBER_ID, [], ["id"], None),
    "members_tierchange": (MEMBER_ID, [], ["id"], None),
    "members_coupon": (MEMBER_ID, [], ["id"], None),
    "members_redemption": (MEMBER_ID, [], ["id"], None),
    "members_guideassignment": (MEMBER_ID, [], ["id"], None),
    "campaigns_broadcast": ("", [], ["id"], None),
    # Staff and their permissions. The password hash is never copied; a sign-in (which only
    # moves last_login) is not an event.
    "org_staff": ("", ["password", "last_login"], ["id"], None),
    "org_staff_groups": ("", [], ["staff_id", "group_id"], None),
    "org_staff_user_permissions": ("", [], ["staff_id", "permission_id"], None),
    "org_staff_stores": ("", [], ["staff_id", "store_id"], None),
    "auth_group_permissions": ("", [], ["group_id", "permission_id"], None),
}


def _array(values: list[str]) -> str:
    return "{" + ",".join(values) + "}"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_triggers() -> str:
    statements = []
    for table, (member, excluded, keys, insert_columns) in AUDITED.items():
        arguments = ", ".join(
            _quote(argument)
            for argument in (
                member,
                _array(excluded),
                _array(keys),
                _array(insert_columns) if insert_columns is not None else "",
            )
        )
        for event, suffix, referencing in (
            ("INSERT", "ins", "NEW TABLE AS audit_new_rows"),
            ("UPDATE", "upd", "OLD TABLE AS audit_old_rows NEW TABLE AS audit_new_rows"),
            ("DELETE", "del", "OLD TABLE AS audit_old_rows"),
        ):
            statements.append(
                f"CREATE TRIGGER audit_{suffix} AFTER {event} ON {table}"
                f" REFERENCING {referencing}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION audit_record_changes({arguments});"
            )
    return "\n".join(statements)


def drop_triggers() -> str:
    return "\n".join(
        f"DROP TRIGGER audit_{suffix} ON {table};"
        for table in AUDITED
        for suffix in ("ins", "upd", "del")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("org", "0001_initial"),
        # After the phones are sealed: converting existing rows must not leave their plain
        # numbers in the trail as the "before" values.
        ("members", "0021_member_erased_at"),
        ("campaigns", "0017_referral_phone_digest"),
    ]

    operations = [
        migrations.RunSQL(RECORD_CHANGES, DROP_RECORD_CHANGES),
        migrations.RunSQL(create_triggers(), drop_triggers()),
    ]
