"""When a campaign finished each household, stored (issue 15, point 5: the map's coverage refresh
dated every finish by scanning the municipality's final visit records since the campaign started).

- `visits_campaignhousehold.finished_at`: NULL while the state is not final; once it is, the
  household's first final visit record since the campaign's first day (start of day, Japan time),
  leaving out a record another one supersedes, else noon of its last attempt's day, else the row's
  updated_at. The same rule as the refresh's `first_final` that it replaces.
- `visits_finish_time()` is that rule for one campaign household, read from its columns and the
  visit records (the row triggers and the fill call it); `visits_date_finishes(campaign)` is the
  same rule for a whole campaign in one pass (tests/visits/test_finished_at.py holds both to the
  refresh's former query).
- Triggers keep it, so every writer (the ORM, the sync's bulk SQL, merges, the admin, raw SQL)
  does without knowing:
  - `visits_campaignhousehold_finished_at`, BEFORE INSERT OR UPDATE of each campaign household:
    computes it from the new row, unless nothing the rule reads changed;
  - `visits_visitrecord_finished_at`, AFTER INSERT, once per statement (the sync pushes 100
    records in one): the campaign households of the households given a final record or a
    correction (and those of the corrected records) are locked in id order, then recomputed with
    a fresh snapshot, so a state made final at the same time by another transaction is not dated
    without these records. Records are append-only: no UPDATE or DELETE to follow;
  - `visits_campaign_finished_at`, AFTER UPDATE of a campaign's start_date or municipality:
    recomputes its households (visits_date_finishes).
  The trigger functions are SECURITY DEFINER (the schema owner, not subject to row-level
  security), as maps_note_data_change: a write in the platform operator's scope is dated too.
- Existing rows are filled by one UPDATE before the triggers exist.

The time zone is settings.TIME_ZONE when this migration ran (Asia/Tokyo). A bulk load with
triggers off (session_replication_role = replica, bench/scale_data.py) must fill the column
itself, with visits_date_finishes()."""

from django.conf import settings
from django.db import migrations, models

# CampaignHousehold.FINAL_STATES, and the outcomes of a visit record that finish a household.
FINAL = "('met', 'refused', 'moved', 'vacant', 'leaflet_left')"
TZ = "'" + settings.TIME_ZONE.replace("'", "''") + "'"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION visits_finish_time(
  p_campaign bigint, p_household uuid, p_state text, p_last_attempt date, p_updated timestamptz
) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
BEGIN
  IF p_state NOT IN {FINAL} THEN
    RETURN NULL;
  END IF;
  RETURN COALESCE(
    (SELECT min(vr.visited_at)
       FROM visits_campaign c
       JOIN visits_visitrecord vr ON vr.municipality_id = c.municipality_id AND vr.household_id = p_household
      WHERE c.id = p_campaign AND vr.outcome IN {FINAL}
        AND vr.visited_at >= (c.start_date + time '00:00') AT TIME ZONE {TZ}
        AND NOT EXISTS (SELECT 1 FROM visits_visitrecord s WHERE s.supersedes_id = vr.id)),
    (p_last_attempt + time '12:00') AT TIME ZONE {TZ},
    p_updated);
END $$;
REVOKE ALL ON FUNCTION visits_finish_time(bigint, uuid, text, date, timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION visits_campaignhousehold_finished_at() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  -- A planning pass or a priority changes none of what the rule reads: the stored time stands
  -- (the other triggers keep it when records or the campaign change).
  IF TG_OP = 'UPDATE' AND NEW.finished_at IS NOT DISTINCT FROM OLD.finished_at AND NEW.state = OLD.state
     AND NEW.campaign_id = OLD.campaign_id AND NEW.household_id = OLD.household_id
     AND NEW.last_attempt_date IS NOT DISTINCT FROM OLD.last_attempt_date AND NEW.updated_at = OLD.updated_at THEN
    RETURN NEW;
  END IF;
  NEW.finished_at := visits_finish_time(NEW.campaign_id, NEW.household_id, NEW.state, NEW.last_attempt_date,
                                        NEW.updated_at);
  RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION visits_campaignhousehold_finished_at() FROM PUBLIC;

CREATE OR REPLACE FUNCTION visits_visitrecord_finished_at() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  ids bigint[];
BEGIN
  -- Only a final record or a correction can change a first final record.
  SELECT array_agg(s.id) INTO ids FROM (
    SELECT ch.id
      FROM (SELECT municipality_id, household_id FROM new_rows
             WHERE outcome IN {FINAL} OR supersedes_id IS NOT NULL
            UNION
            SELECT o.municipality_id, o.household_id
              FROM new_rows n JOIN visits_visitrecord o ON o.id = n.supersedes_id) t
      JOIN visits_campaignhousehold ch ON ch.household_id = t.household_id
      JOIN visits_campaign c ON c.id = ch.campaign_id AND c.municipality_id = t.municipality_id
     ORDER BY ch.id
       FOR NO KEY UPDATE OF ch
  ) s;
  IF ids IS NULL THEN
    RETURN NULL;
  END IF;
  -- A new statement, a new snapshot: it sees what the transactions waited for above committed.
  UPDATE visits_campaignhousehold ch SET finished_at = f.at
    FROM (SELECT id, visits_finish_time(campaign_id, household_id, state, last_attempt_date, updated_at) AS at
            FROM visits_campaignhousehold WHERE id = ANY (ids)) f
   WHERE ch.id = f.id AND ch.finished_at IS DISTINCT FROM f.at;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION visits_visitrecord_finished_at() FROM PUBLIC;

-- The same rule for every household of a campaign in one pass over the municipality's final
-- records (as the refresh's first_final did): a call per household took 8.6 s for a campaign of
-- 150,000 finished households, this takes about one. Answers the number of rows it changed.
CREATE OR REPLACE FUNCTION visits_date_finishes(p_campaign bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  changed bigint;
BEGIN
  WITH c AS (
    SELECT municipality_id, (start_date + time '00:00') AT TIME ZONE {TZ} AS since
      FROM visits_campaign WHERE id = p_campaign
  ), first_final AS (
    SELECT vr.household_id, min(vr.visited_at) AS at
      FROM c JOIN visits_visitrecord vr ON vr.municipality_id = c.municipality_id
     WHERE vr.outcome IN {FINAL} AND vr.visited_at >= c.since
       AND NOT EXISTS (SELECT 1 FROM visits_visitrecord s WHERE s.supersedes_id = vr.id)
     GROUP BY vr.household_id
  ), dated AS (
    SELECT ch.id, CASE WHEN ch.state IN {FINAL} THEN
             COALESCE(f.at, (ch.last_attempt_date + time '12:00') AT TIME ZONE {TZ}, ch.updated_at) END AS at
      FROM visits_campaignhousehold ch LEFT JOIN first_final f ON f.household_id = ch.household_id
     WHERE ch.campaign_id = p_campaign
  )
  UPDATE visits_campaignhousehold ch SET finished_at = d.at
    FROM dated d
   WHERE ch.id = d.id AND ch.finished_at IS DISTINCT FROM d.at;
  GET DIAGNOSTICS changed = ROW_COUNT;
  RETURN changed;
END $$;
REVOKE ALL ON FUNCTION visits_date_finishes(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION visits_campaign_finished_at() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM visits_date_finishes(NEW.id);
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION visits_campaign_finished_at() FROM PUBLIC;
"""  # noqa: S608 - constants

FILL = f"""
UPDATE visits_campaignhousehold
   SET finished_at = visits_finish_time(campaign_id, household_id, state, last_attempt_date, updated_at)
 WHERE state IN {FINAL};
"""  # noqa: S608 - constants

TRIGGERS = """
CREATE TRIGGER visits_campaignhousehold_finished_at BEFORE INSERT OR UPDATE ON visits_campaignhousehold
  FOR EACH ROW EXECUTE FUNCTION visits_campaignhousehold_finished_at();
CREATE TRIGGER visits_visitrecord_finished_at AFTER INSERT ON visits_visitrecord
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION visits_visitrecord_finished_at();
CREATE TRIGGER visits_campaign_finished_at AFTER UPDATE OF start_date, municipality_id ON visits_campaign
  FOR EACH ROW WHEN (OLD.start_date IS DISTINCT FROM NEW.start_date OR OLD.municipality_id IS DISTINCT FROM NEW.municipality_id)
  EXECUTE FUNCTION visits_campaign_finished_at();
"""

REVERSE = """
DROP TRIGGER IF EXISTS visits_campaignhousehold_finished_at ON visits_campaignhousehold;
DROP TRIGGER IF EXISTS visits_visitrecord_finished_at ON visits_visitrecord;
DROP TRIGGER IF EXISTS visits_campaign_finished_at ON visits_campaign;
DROP FUNCTION IF EXISTS visits_campaignhousehold_finished_at();
DROP FUNCTION IF EXISTS visits_visitrecord_finished_at();
DROP FUNCTION IF EXISTS visits_campaign_finished_at();
DROP FUNCTION IF EXISTS visits_date_finishes(bigint);
DROP FUNCTION IF EXISTS visits_finish_time(bigint, uuid, text, date, timestamptz);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("visits", "0007_request_path_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaignhousehold",
            name="finished_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True,
                help_text="When the campaign finished it (kept by the database): NULL until the state is final",
            ),
        ),
        migrations.RunSQL(FUNCTIONS + FILL + TRIGGERS, REVERSE),
    ]
