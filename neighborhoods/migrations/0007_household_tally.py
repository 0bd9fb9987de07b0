"""The household count of each 自治会, kept as households change (issue 15, point 5: a town's lists
and GeoJSON no longer count 1.8 million households per request).

- `neighborhoods_householdtally`: one row per 自治会 that has had a household, the number of its
  households not merged into another (of its own municipality: a row naming another town's
  自治会 is not counted, as the counts it replaces did not). A tenant table (row-level security, as every table with a
  municipality).
- Statement-level triggers on neighborhoods_household add what a statement changed, from its
  transition tables: an import of 10,000 households is one upsert per 自治会 it touched; an update
  that moves no household between 自治会 (and merges none) writes nothing. SECURITY DEFINER (the
  schema owner, not subject to row-level security), as maps_note_data_change: a write in the
  platform operator's scope counts too. Rows are written in 自治会 order, so two writers take the
  rows' locks in the same order.
- The row's foreign key cascades in the database: the ORM deletes a 自治会 by first taking its
  households out of it (SET NULL, which the trigger subtracts) and then the 自治会 itself."""

import django.db.models.deletion
from django.db import migrations, models

FUNCTION = """
CREATE OR REPLACE FUNCTION neighborhoods_tally_households() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO neighborhoods_householdtally AS t (neighborhood_id, municipality_id, households)
    SELECT h.neighborhood_id, h.municipality_id, count(*)
      FROM new_rows h JOIN neighborhoods_neighborhood n ON n.id = h.neighborhood_id AND n.municipality_id = h.municipality_id
     WHERE h.merged_into_id IS NULL
     GROUP BY h.neighborhood_id, h.municipality_id ORDER BY h.neighborhood_id
    ON CONFLICT (neighborhood_id) DO UPDATE SET households = t.households + EXCLUDED.households;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO neighborhoods_householdtally AS t (neighborhood_id, municipality_id, households)
    SELECT moved.neighborhood_id, moved.municipality_id, sum(delta) FROM (
        SELECT neighborhood_id, municipality_id, -1 AS delta FROM old_rows
         WHERE neighborhood_id IS NOT NULL AND merged_into_id IS NULL
        UNION ALL
        SELECT neighborhood_id, municipality_id, 1 FROM new_rows
         WHERE neighborhood_id IS NOT NULL AND merged_into_id IS NULL
    ) moved
      JOIN neighborhoods_neighborhood n ON n.id = moved.neighborhood_id AND n.municipality_id = moved.municipality_id
     GROUP BY moved.neighborhood_id, moved.municipality_id HAVING sum(delta) <> 0 ORDER BY moved.neighborhood_id
    ON CONFLICT (neighborhood_id) DO UPDATE SET households = t.households + EXCLUDED.households;
  ELSE
    UPDATE neighborhoods_householdtally t SET households = t.households - gone.n
      FROM (SELECT neighborhood_id, municipality_id, count(*) AS n FROM old_rows
             WHERE neighborhood_id IS NOT NULL AND merged_into_id IS NULL
             GROUP BY neighborhood_id, municipality_id ORDER BY neighborhood_id) gone
     WHERE t.neighborhood_id = gone.neighborhood_id AND t.municipality_id = gone.municipality_id;
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION neighborhoods_tally_households() FROM PUBLIC;

CREATE TRIGGER neighborhoods_tally_insert AFTER INSERT ON neighborhoods_household
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION neighborhoods_tally_households();
CREATE TRIGGER neighborhoods_tally_update AFTER UPDATE ON neighborhoods_household
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION neighborhoods_tally_households();
CREATE TRIGGER neighborhoods_tally_delete AFTER DELETE ON neighborhoods_household
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION neighborhoods_tally_households();

ALTER TABLE neighborhoods_householdtally ADD CONSTRAINT neighborhoods_householdtally_neighborhood_fk
  FOREIGN KEY (neighborhood_id) REFERENCES neighborhoods_neighborhood (id) ON DELETE CASCADE;

INSERT INTO neighborhoods_householdtally (neighborhood_id, municipality_id, households)
SELECT n.id, n.municipality_id, count(h.id)
  FROM neighborhoods_neighborhood n
  LEFT JOIN neighborhoods_household h
         ON h.neighborhood_id = n.id AND h.municipality_id = n.municipality_id AND h.merged_into_id IS NULL
 GROUP BY n.id, n.municipality_id;
"""

REVERSE = """
DROP TRIGGER IF EXISTS neighborhoods_tally_insert ON neighborhoods_household;
DROP TRIGGER IF EXISTS neighborhoods_tally_update ON neighborhoods_household;
DROP TRIGGER IF EXISTS neighborhoods_tally_delete ON neighborhoods_household;
DROP FUNCTION IF EXISTS neighborhoods_tally_households();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('neighborhoods', '0006_request_path_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='HouseholdTally',
            fields=[
                ('neighborhood', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='tally', serialize=False, to='neighborhoods.neighborhood')),
                ('households', models.IntegerField(default=0)),
                ('municipality', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='neighborhoods.municipality')),
            ],
            options={
                'verbose_name': '自治会の世帯数',
                'verbose_name_plural': '自治会の世帯数',
            },
        ),
        migrations.RunSQL(FUNCTION, REVERSE),
    ]
