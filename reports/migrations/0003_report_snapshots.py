"""Stored reports (issue 15, point 5): the snapshot table, and the data versions of the reports'
inputs that the map's change log (maps 0003) did not keep yet.

- `reports_reportsnapshot` holds each report as last computed (a tenant table: row-level security
  as every table with a municipality).
- The reports read more tables than the map. Tables with a municipality get maps 0003's
  statement-level triggers (maps_note_data_change) under new input names. Tables whose
  municipality is their parent's (a campaign's 自治会, a concern's transitions, a case's contacts
  and meetings) get the same kind of trigger with a function that finds the municipality through
  the parent row; a row whose parent is deleted in the same statement (a cascade) is noted by the
  parent's own trigger. Both functions are SECURITY DEFINER (the schema owner), as maps 0003's.
  The names are maps.queries.LOGGED_INPUTS' (the maps tests check every one has its triggers).
  A case's stage history needs none: pghistory writes it only as the case row changes, which the
  case's own trigger notes."""

import django.db.models.deletion
from django.db import migrations, models

# table -> input name (maps.queries.LOGGED_INPUTS)
TENANT_TABLES = {
    "neighborhoods_dailylifearea": "daily_life_area",
    "neighborhoods_district": "district",
    "visits_scheduledvisit": "scheduled_visit",
    "visits_partnerorganization": "partner",
    "accounts_user": "user",
    "outreach_meeting": "meeting",
}

# table -> (input name, parent table, the column pointing at the parent's id)
CHILD_TABLES = {
    "visits_campaignneighborhood": ("campaign_target", "visits_campaign", "campaign_id"),
    "outreach_concerntransition": ("concern_transition", "outreach_concern", "concern_id"),
    "outreach_casecontact": ("case_contact", "outreach_outreachcase", "case_id"),
    "outreach_casemeeting": ("case_meeting", "outreach_outreachcase", "case_id"),
}

# The parent of each child table is chosen by the trigger's table (one argument, the input name, as
# maps 0003's triggers have); names come from the constants above, never from input.
_PARENTS = "\n".join(
    f"    WHEN '{table}' THEN parent := '{parent}'; fk := '{column}';"
    for table, (_name, parent, column) in CHILD_TABLES.items()
)

CHILD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION reports_note_child_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  parent text;
  fk text;
  changed text;
BEGIN
  CASE TG_TABLE_NAME
{_PARENTS}
  END CASE;
  changed := CASE TG_OP WHEN 'INSERT' THEN 'SELECT %2$I FROM new_rows'
                        WHEN 'DELETE' THEN 'SELECT %2$I FROM old_rows'
                        ELSE 'SELECT %2$I FROM new_rows UNION ALL SELECT %2$I FROM old_rows' END;
  EXECUTE format(
    'INSERT INTO maps_mapdatachange (municipality_id, input, changes)'
    ' SELECT DISTINCT p.municipality_id, %3$L, 1 FROM (' || changed || ') r (parent_id)'
    ' JOIN %1$I p ON p.id = r.parent_id WHERE p.municipality_id IS NOT NULL',
    parent, fk, TG_ARGV[0]);
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION reports_note_child_change() FROM PUBLIC;
"""  # noqa: S608 - the table names above, constants

TRIGGERS = """
CREATE TRIGGER maps_data_change_insert AFTER INSERT ON {table}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}('{name}');
CREATE TRIGGER maps_data_change_update AFTER UPDATE ON {table}
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}('{name}');
CREATE TRIGGER maps_data_change_delete AFTER DELETE ON {table}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}('{name}');
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS maps_data_change_insert ON {table};
DROP TRIGGER IF EXISTS maps_data_change_update ON {table};
DROP TRIGGER IF EXISTS maps_data_change_delete ON {table};
"""

INSTALL = (
    CHILD_FUNCTION
    + "".join(TRIGGERS.format(table=t, name=n, function="maps_note_data_change") for t, n in TENANT_TABLES.items())
    + "".join(TRIGGERS.format(table=t, name=n, function="reports_note_child_change")
              for t, (n, _p, _c) in CHILD_TABLES.items())
)
UNINSTALL = (
    "".join(DROP_TRIGGERS.format(table=t) for t in (*TENANT_TABLES, *CHILD_TABLES))
    + "DROP FUNCTION IF EXISTS reports_note_child_change();"
)


class Migration(migrations.Migration):

    dependencies = [
        ("reports", "0002_export_expiry_schedule"),
        ("maps", "0003_tile_cache"),
        ("accounts", "0002_municipal_users_are_never_staff"),
        ("neighborhoods", "0006_request_path_indexes"),
        ("visits", "0007_request_path_indexes"),
        ("outreach", "0005_corrections_and_overdue_when_read"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("fiscal_year", "年度報告"), ("corporations", "法人別報告")], max_length=20)),
                ("key", models.CharField(help_text='The parameters: "2025", "campaign:12", "fiscal_year:2025"', max_length=40)),
                ("version", models.TextField(help_text="The version of the inputs the result was computed from")),
                ("requested_version", models.TextField(blank=True)),
                ("requested_at", models.DateTimeField(blank=True, null=True)),
                ("computed_at", models.DateTimeField()),
                ("duration_ms", models.PositiveIntegerField(default=0)),
                ("result", models.TextField(help_text="The report as JSON")),
                ("municipality", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="neighborhoods.municipality")),
            ],
            options={
                "verbose_name": "集計済みの報告",
                "verbose_name_plural": "集計済みの報告",
                "constraints": [models.UniqueConstraint(fields=("municipality", "kind", "key"), name="report_snapshot_unique")],
            },
        ),
        migrations.RunSQL(INSTALL, UNINSTALL),
    ]
