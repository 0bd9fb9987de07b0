"""The placement summary from tallies kept by the database (issue 15, point 5: counting 1.8 million
households by match level per request took 0.7 s), as neighborhoods 0007 keeps each 自治会's count.

- `addresses_matchleveltally`: per (municipality, match level), the number of its households not
  merged into another (what the summary counts for a coordinator or supervisor: the whole town).
  `addresses_referenceleveltally`: per (municipality, level), its reference points. Tenant tables
  (row-level security, as every table with a municipality).
- Statement-level triggers on neighborhoods_household and addresses_addressreference add what a
  statement changed, from its transition tables: an import of 10,000 rows is one upsert per level
  it touched; an update that changes no level (and merges nobody) writes nothing. SECURITY DEFINER
  (the schema owner, not subject to row-level security), as maps_note_data_change. Rows are written
  in (municipality, level) order, so two writers take the rows' locks in the same order."""

import django.db.models.deletion
from django.db import migrations, models

# One function and three triggers per tally (TALLIES: the tally table, its level and count columns,
# the source table, its level column, which of its rows count), and the rows counted once, now.
_TALLY = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {tally} AS t (municipality_id, {key}, {count})
    SELECT municipality_id, {source_key}, count(*) FROM new_rows WHERE {counts}
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (municipality_id, {key}) DO UPDATE SET {count} = t.{count} + EXCLUDED.{count};
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO {tally} AS t (municipality_id, {key}, {count})
    SELECT municipality_id, lvl, sum(delta) FROM (
        SELECT municipality_id, {source_key} AS lvl, -1 AS delta FROM old_rows WHERE {counts}
        UNION ALL
        SELECT municipality_id, {source_key}, 1 FROM new_rows WHERE {counts}
    ) moved
     GROUP BY 1, 2 HAVING sum(delta) <> 0 ORDER BY 1, 2
    ON CONFLICT (municipality_id, {key}) DO UPDATE SET {count} = t.{count} + EXCLUDED.{count};
  ELSE
    UPDATE {tally} t SET {count} = t.{count} - gone.n
      FROM (SELECT municipality_id, {source_key} AS lvl, count(*) AS n FROM old_rows WHERE {counts}
             GROUP BY 1, 2 ORDER BY 1, 2) gone
     WHERE t.municipality_id = gone.municipality_id AND t.{key} = gone.lvl;
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;

CREATE TRIGGER {function}_insert AFTER INSERT ON {source}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER {function}_update AFTER UPDATE ON {source}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();
CREATE TRIGGER {function}_delete AFTER DELETE ON {source}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();

INSERT INTO {tally} (municipality_id, {key}, {count})
SELECT municipality_id, {source_key}, count(*) FROM {source} WHERE {counts} GROUP BY 1, 2 ORDER BY 1, 2;
"""

_UNTALLY = """
DROP TRIGGER IF EXISTS {function}_insert ON {source};
DROP TRIGGER IF EXISTS {function}_update ON {source};
DROP TRIGGER IF EXISTS {function}_delete ON {source};
DROP FUNCTION IF EXISTS {function}();
"""

TALLIES = [
    {"function": "addresses_tally_match_levels", "tally": "addresses_matchleveltally", "key": "match_level",
     "count": "households", "source": "neighborhoods_household", "source_key": "match_level",
     "counts": "merged_into_id IS NULL"},
    {"function": "addresses_tally_reference_levels", "tally": "addresses_referenceleveltally", "key": "level",
     "count": "points", "source": "addresses_addressreference", "source_key": "level", "counts": "true"},
]

INSTALL = "".join(_TALLY.format(**t) for t in TALLIES)
UNINSTALL = "".join(_UNTALLY.format(**t) for t in TALLIES)


class Migration(migrations.Migration):

    dependencies = [
        ('addresses', '0001_address_reference'),
        ('neighborhoods', '0008_stored_possible_duplicates'),
    ]

    operations = [
        migrations.CreateModel(
            name='MatchLevelTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('match_level', models.CharField(max_length=12)),
                ('households', models.BigIntegerField(default=0)),
                ('municipality', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='neighborhoods.municipality')),
            ],
            options={
                'verbose_name': '照合レベル別の世帯数',
                'verbose_name_plural': '照合レベル別の世帯数',
                'constraints': [models.UniqueConstraint(fields=('municipality', 'match_level'), name='match_level_tally_once')],
            },
        ),
        migrations.CreateModel(
            name='ReferenceLevelTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('level', models.CharField(max_length=10)),
                ('points', models.BigIntegerField(default=0)),
                ('municipality', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='neighborhoods.municipality')),
            ],
            options={
                'verbose_name': 'レベル別の住所参照点数',
                'verbose_name_plural': 'レベル別の住所参照点数',
                'constraints': [models.UniqueConstraint(fields=('municipality', 'level'), name='reference_level_tally_once')],
            },
        ),
        migrations.RunSQL(INSTALL, UNINSTALL),
    ]
