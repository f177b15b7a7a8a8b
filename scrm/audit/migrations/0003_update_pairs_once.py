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


# (text in 0002's function, its replacement): each must occur exactly once.
EDITS = [
    (
        "CREATE OR REPLACE FUNCTION audit_record_changes() RETURNS trigger LANGUAGE plpgsql AS $$",
        """-- jit off: the transition tables carry no statistics, so a bulk update's pairing looks
-- like millions of rows to the planner, which then spent 0.4 s compiling it per statement.
CREATE OR REPLACE FUNCTION audit_record_changes() RETURNS trigger LANGUAGE plpgsql
SET jit = off AS $$""",
    ),
    (
        "    pair_on text;",
        """    pair_on text;
    row_key_sql text;
    member_sql text;""",
    ),
    (
        "                    ON n.row_key = o.row_key) AS p",
        """                    ON n.row_key = o.row_key
                OFFSET 0) AS p""",
    ),
    (
        """        EXECUTE format(
            'INSERT INTO audit_auditevent
                 (action, "table", row_id, member_id, actor_id, actor_label, old, new, origin)
             SELECT ''update'', %L, audit_row_key(p.r, $4), audit_member_id(p.r, $5),
                    $1, $2, d.old, d.new, $3
               FROM (SELECT to_jsonb(o) AS o, to_jsonb(n) AS r
                       FROM audit_old_rows AS o JOIN audit_new_rows AS n ON %s
                      WHERE ROW(%s) IS DISTINCT FROM ROW(%s)) AS p""",
        """        -- The row id and the member are read inline for the usual one-column cases (a
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
                     OFFSET 0) AS p""",
    ),
    (
        "            TG_TABLE_NAME, pair_on, old_values, new_values)",
        "            TG_TABLE_NAME, row_key_sql, member_sql, pair_on, old_values, new_values)",
    ),
]


def _edited_function() -> str:
    text = _previous_function()
    for old, new in EDITS:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return "\n" + text + "\n"


RECORD_CHANGES = _edited_function()


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_audit_triggers")]

    operations = [migrations.RunSQL(RECORD_CHANGES, _previous_function())]
