"""Tiles from a cache (issue 15, point 2): the tile cache table, the per-municipality data versions
of the map's inputs, and the job that keeps both small.

- `maps_cachedtile` holds rendered tiles (a tenant table: row-level security as every table with a
  municipality); UNLOGGED, since a cache may be lost in a crash (it is re-rendered) and need not
  be written to the WAL on every miss.
- `maps_mapdatachange` is filled by statement-level triggers on the tables the tiles read (of this
  and other apps, hence their dependencies): one row per statement and municipality it touched,
  from the statement's transition tables, so a bulk write of 10,000 rows adds one row. The trigger
  function is SECURITY DEFINER (the schema owner, who is not subject to row-level security): a
  write made in the platform operator's scope (a 自治会 in the admin) notes its change too.
- the django-q2 schedule `maps-tile-cache` (every 10 minutes) folds the change rows and evicts old
  tiles (maps.tasks.evict_tile_cache_task)."""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

# table -> the input name the tiles' versions use (maps.queries.LOGGED_INPUTS)
INPUT_TABLES = {
    "neighborhoods_household": "household",
    "neighborhoods_neighborhood": "neighborhood",
    "neighborhoods_communityresource": "resource",
    "visits_visitrecord": "visit_record",
    "visits_campaignhousehold": "campaign_household",
    "visits_allocation": "allocation",
    "visits_campaign": "campaign",
    "outreach_concern": "concern",
    "outreach_outreachcase": "case",
}

FUNCTION = """
CREATE OR REPLACE FUNCTION maps_note_data_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO maps_mapdatachange (municipality_id, input, changes)
    SELECT DISTINCT municipality_id, TG_ARGV[0], 1 FROM new_rows WHERE municipality_id IS NOT NULL;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO maps_mapdatachange (municipality_id, input, changes)
    SELECT DISTINCT municipality_id, TG_ARGV[0], 1
      FROM (SELECT municipality_id FROM new_rows UNION ALL SELECT municipality_id FROM old_rows) s
     WHERE municipality_id IS NOT NULL;
  ELSE
    INSERT INTO maps_mapdatachange (municipality_id, input, changes)
    SELECT DISTINCT municipality_id, TG_ARGV[0], 1 FROM old_rows WHERE municipality_id IS NOT NULL;
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION maps_note_data_change() FROM PUBLIC;
"""

TRIGGERS = """
CREATE TRIGGER maps_data_change_insert AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION maps_note_data_change('{name}');
CREATE TRIGGER maps_data_change_update AFTER UPDATE ON {table}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION maps_note_data_change('{name}');
CREATE TRIGGER maps_data_change_delete AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION maps_note_data_change('{name}');
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS maps_data_change_insert ON {table};
DROP TRIGGER IF EXISTS maps_data_change_update ON {table};
DROP TRIGGER IF EXISTS maps_data_change_delete ON {table};
"""

SCHEDULE = "maps-tile-cache"


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.using(schema_editor.connection.alias).update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "maps.tasks.evict_tile_cache_task",
            "schedule_type": "I",
            "minutes": 10,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.using(schema_editor.connection.alias).filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("maps", "0002_coverage_refresh_schedule"),
        ("neighborhoods", "0005_household_placement_merge_and_member_count"),
        ("visits", "0006_outcome_and_corrections"),
        ("outreach", "0005_corrections_and_overdue_when_read"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.CreateModel(
            name="CachedTile",
            fields=[
                ("key", models.UUIDField(help_text="128 bits of the hash of what the tile shows", primary_key=True, serialize=False)),
                ("layer", models.CharField(max_length=20)),
                ("version", models.TextField()),
                ("tile", models.BinaryField()),
                ("size", models.PositiveIntegerField(default=0)),
                ("rendered_at", models.DateTimeField()),
                ("municipality", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="neighborhoods.municipality")),
            ],
            options={
                "verbose_name": "タイルキャッシュ",
                "verbose_name_plural": "タイルキャッシュ",
                "indexes": [models.Index(fields=["municipality", "rendered_at"], name="cached_tile_age")],
            },
        ),
        migrations.RunSQL("ALTER TABLE maps_cachedtile SET UNLOGGED", "ALTER TABLE maps_cachedtile SET LOGGED"),
        migrations.CreateModel(
            name="MapDataChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("input", models.CharField(max_length=30)),
                ("changes", models.BigIntegerField(default=1)),
                ("municipality", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="neighborhoods.municipality")),
            ],
            options={
                "verbose_name": "地図データの変更",
                "verbose_name_plural": "地図データの変更",
                "indexes": [models.Index(fields=["municipality", "input"], include=("changes",), name="map_data_change_version")],
            },
        ),
        migrations.RunSQL(
            FUNCTION + "".join(TRIGGERS.format(table=t, name=n) for t, n in INPUT_TABLES.items()),
            "".join(DROP_TRIGGERS.format(table=t) for t in INPUT_TABLES) + "DROP FUNCTION IF EXISTS maps_note_data_change();",
        ),
        migrations.RunPython(add_schedule, remove_schedule),
    ]
