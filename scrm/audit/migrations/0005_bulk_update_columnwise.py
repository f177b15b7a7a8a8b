"""Audit trigger: a bulk UPDATE's changes are found column by column, not through jsonb.

The bulk branch turned both versions of every changed row into jsonb, split the new one
into its ~30 keys and looked each up in the old one: 33 µs a row, two thirds of an import
chunk's update of 20,000 known members. It now compares the recorded columns with their
own types and converts only the columns that changed (a column changed from or to NULL
records a JSON null, as before). The trail rows are the same as before and as the
small-update branch writes (tests/audit/test_triggers.py compares the two).
"""

import importlib

from django.db import migrations

PREVIOUS = importlib.import_module("scrm.audit.migrations.0004_key_rotation_updates")

# (text in 0004's function, its replacement): each must occur exactly once.
EDITS = [
    (
        "    new_values text;\n",
        "    new_values text;\n    changes text;\n",
    ),
    (
        """        SELECT string_agg(format('o.%I', attname), ', ' ORDER BY attnum),
               string_agg(format('n.%I', attname), ', ' ORDER BY attnum)
          INTO old_values, new_values
""",
        """        -- Per recorded column: its name, and its old and new values as jsonb when it
        -- changed (NULL when it did not; a NULL value is the JSON null).
        SELECT string_agg(format('o.%I', attname), ', ' ORDER BY attnum),
               string_agg(format('n.%I', attname), ', ' ORDER BY attnum),
               string_agg(format(
                   '(%1$L, CASE WHEN o.%1$I IS DISTINCT FROM n.%1$I'
                   ' THEN coalesce(to_jsonb(o.%1$I), ''null'') END,'
                   ' CASE WHEN o.%1$I IS DISTINCT FROM n.%1$I'
                   ' THEN coalesce(to_jsonb(n.%1$I), ''null'') END)', attname),
                   ', ' ORDER BY attnum)
          INTO old_values, new_values, changes
""",
    ),
    (
        """        row_key_sql := CASE WHEN single_key THEN format('left(p.r->>%L, 64)', key_columns[1])
                            ELSE 'audit_row_key(p.r, $4)' END;
        member_sql := CASE WHEN member_column THEN format('(p.r->>%L)::bigint', member_rule)
                           WHEN member_rule = '' THEN 'NULL::bigint'
                           ELSE 'audit_member_id(p.r, $5)' END;
""",
        """        row_key_sql := CASE WHEN single_key
                            THEN format('left(to_jsonb(n.%I) #>> ''{}'', 64)', key_columns[1])
                            ELSE 'audit_row_key(to_jsonb(n), $4)' END;
        member_sql := CASE WHEN member_column THEN format('n.%I::bigint', member_rule)
                           WHEN member_rule = '' THEN 'NULL::bigint'
                           ELSE 'audit_member_id(to_jsonb(n), $5)' END;
""",
    ),
    (
        """        -- OFFSET 0 keeps the pairs' jsonb computed once per row: flattened into the outer
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
""",
        """        -- Only pairs with a recorded column changed reach the per-column diff, and only
        -- changed columns become jsonb (whole rows as jsonb, split and compared key by
        -- key, cost 33 µs a row; this is about a third of it).
        EXECUTE format(
            'INSERT INTO audit_auditevent
                 (action, "table", row_id, member_id, actor_id, actor_label, old, new, origin)
             SELECT ''update'', %L, %s, %s, $1, $2, d.old, d.new, $3
               FROM audit_old_rows AS o JOIN audit_new_rows AS n ON %s
              CROSS JOIN LATERAL (
                    SELECT jsonb_object_agg(v.k, v.ov) AS old,
                           jsonb_object_agg(v.k, v.nv) AS new
                      FROM (VALUES %s) AS v(k, ov, nv)
                     WHERE v.nv IS NOT NULL
              ) AS d
              WHERE ROW(%s) IS DISTINCT FROM ROW(%s) AND d.new IS NOT NULL',
            TG_TABLE_NAME, row_key_sql, member_sql, pair_on, changes, old_values, new_values)
        USING actor_id, actor_label, origin, key_columns, member_rule;
""",
    ),
]


def _edited() -> str:
    text = PREVIOUS.RECORD_CHANGES
    for old, new in EDITS:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


RECORD_CHANGES = _edited()


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_key_rotation_updates")]

    operations = [migrations.RunSQL(RECORD_CHANGES, PREVIOUS.RECORD_CHANGES)]
