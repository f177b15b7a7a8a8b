"""Audit trigger: an UPDATE's old and new rows are turned into jsonb once per row.

The planner flattened the pairing subquery into the statement that compares columns, so
`to_jsonb(old row)` ran again for every column compared: a bulk update of 20,000 members
spent 4.7 s in the trigger. `OFFSET 0` keeps the subquery whole (0.8 s); the row id and
member are read inline in the bulk statement, as the INSERT and DELETE statements do.
Without statistics on the transition tables the planner also took a bulk pairing for a
huge query and JIT-compiled it (0.4 s per statement on a server built with LLVM): the
function runs with jit off.
"""

import importlib

from django.db import migrations

PREVIOUS = importlib.import_module("scrm.audit.migrations.0002_audit_triggers")


def _previous_function() -> str:
    text = PREVIOUS.RECORD_CHANGES
    start = text.index("CREATE FUNCTION audit_record_changes")
    end = text.index("END $$;", start) + len("END $$;")
    return text[start:end].replace(
        "CREATE FUNCTION audit_record_changes", "CREATE OR REPLACE FUNCTION audit_record_changes"
    )


RECORD_CHANGES = r"""
-- jit off: the transition tables carry no statistics, so a bulk update's pairing looks
-- like millions of rows to the planner, which then spent 0.4 s compiling it per statement.
CREATE OR REPLACE FUNCTION audit_record_changes() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$
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
    row_key_sql text;
    member_sql text;
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
                    ON n.row_key = o.row_key
                OFFSET 0) AS p
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
        -- The row id and the member are read inline for the usual one-column cases (a
        -- function call per row cost as much as the rest).
        row_key_sql := CASE WHEN single_key THEN format('left(p.r->>%L, 64)', key_columns[1])
                            ELSE 'audit_row_key(p.r, $4)' END;
        member_sql := CASE WHEN member_column THEN format('(p.r->>%L)::bigint', member_rule)
                           WHEN member_rule = '' THEN 'NULL::bigint'
                           ELSE 'audit_member_id(p.r, $5)' END;
        -- OFFSET 0 keeps the pairs' jsonb computed once per row: flattened into the outer
        -- query, to_jsonb(o) was rebuilt for every column compared (a 20,000-member import
        -- update spent 4.7 s here instead of 0.8 s).
        EXECUTE format(
            'INSERT INTO audit_auditevent
                 (action, "table", row_id, member_id, actor_id, actor_label, old, new, origin)
             SELECT ''update'', %L, %s, %s, $1, $2, d.old, d.new, $3
               FROM (SELECT to_jsonb(o) AS o, to_jsonb(n) AS r
                       FROM audit_old_rows AS o JOIN audit_new_rows AS n ON %s
                      WHERE ROW(%s) IS DISTINCT FROM ROW(%s)
                     OFFSET 0) AS p
              CROSS JOIN LATERAL (
                    SELECT jsonb_object_agg(e.key, p.o->e.key) AS old,
                           jsonb_object_agg(e.key, e.value) AS new
                      FROM jsonb_each(p.r) AS e
                     WHERE NOT (e.key = ANY($6)) AND e.value IS DISTINCT FROM p.o->e.key
              ) AS d
              WHERE d.new IS NOT NULL',
            TG_TABLE_NAME, row_key_sql, member_sql, pair_on, old_values, new_values)
        USING actor_id, actor_label, origin, key_columns, member_rule, excluded;
    END IF;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_audit_triggers")]

    operations = [migrations.RunSQL(RECORD_CHANGES, _previous_function())]
