"""Hash-chained audit events: one chain per municipality (and one for events without a municipality).

Installs, in order:
1. the nullable chain columns;
2. ``audit_event_digest(...)``, the one definition of an event's hash, used by the trigger and by
   ``manage.py verify_audit``;
3. a backfill of the rows already there, chained in (municipality, at, id) order;
4. NOT NULL and the unique chain position per chain;
5. the BEFORE INSERT trigger that chains every new row (ORM, raw SQL, COPY alike).

The append-only trigger of 0001 stays as it is; the backfill switches it off for its own UPDATEs
only, inside this migration's transaction.
"""

from django.db import migrations, models
from django.db.models.functions import Coalesce

# The hash of an event: sha256 over a jsonb array of its fields, rendered as text. jsonb's text
# output is canonical for equal values (object keys sorted, no whitespace choices), a JSON array
# separates fields unambiguously, and SQL NULL becomes JSON null, distinct from "". The timestamp is
# rendered in UTC with microseconds so the session's TimeZone and DateStyle do not matter.
# IMMUTABLE is a promise we keep: jsonb_build_array, to_char and convert_to are only STABLE in
# general (type output, locale-dependent patterns), but every input here is converted with a
# format that does not depend on any setting. Functions are schema-qualified, so a caller's
# search_path cannot substitute its own.
DIGEST_SQL = """
CREATE FUNCTION audit_event_digest(
    prev_hash text,
    municipality_id bigint,
    chain_seq bigint,
    at timestamptz,
    actor_id bigint,
    actor_username text,
    actor_role text,
    device_token_id uuid,
    ip inet,
    action text,
    object_type text,
    object_id text,
    basis text,
    detail jsonb
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.encode(
    pg_catalog.sha256(
        pg_catalog.convert_to(
            pg_catalog.jsonb_build_array(
                prev_hash,
                municipality_id,
                chain_seq,
                pg_catalog.to_char(pg_catalog.timezone('UTC', at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                actor_id,
                actor_username,
                actor_role,
                device_token_id::text,
                ip::text,
                action,
                object_type,
                object_id,
                basis,
                detail
            )::text,
            'UTF8'
        )
    ),
    'hex'
);
COMMENT ON FUNCTION audit_event_digest(
    text, bigint, bigint, timestamptz, bigint, text, text, uuid, inet, text, text, text, text, jsonb
) IS 'The hash of an audit event (hex sha256 over a canonical jsonb array of its fields); used by the chain trigger and by manage.py verify_audit.';
"""

DROP_DIGEST_SQL = """
DROP FUNCTION audit_event_digest(
    text, bigint, bigint, timestamptz, bigint, text, text, uuid, inet, text, text, text, text, jsonb
);
"""

# Rows written before this migration, chained per municipality in the order they were written.
# The append-only trigger refuses UPDATE, so it is off for these statements only (ALTER TABLE is
# transactional: it is back on when the migration commits, or nothing happened).
BACKFILL_SQL = """
ALTER TABLE audit_auditevent DISABLE TRIGGER pgtrigger_audit_append_only_f6eda;
DO $backfill$
DECLARE
    r audit_auditevent%ROWTYPE;
    chain bigint := NULL;
    seq bigint := 0;
    prev text := repeat('0', 64);
BEGIN
    FOR r IN
        SELECT * FROM audit_auditevent ORDER BY COALESCE(municipality_id, 0), at, id
    LOOP
        IF chain IS DISTINCT FROM COALESCE(r.municipality_id, 0) THEN
            chain := COALESCE(r.municipality_id, 0);
            seq := 0;
            prev := repeat('0', 64);
        END IF;
        seq := seq + 1;
        UPDATE audit_auditevent
           SET chain_seq = seq,
               prev_hash = prev,
               hash = audit_event_digest(
                   prev, r.municipality_id, seq, r.at, r.actor_id, r.actor_username, r.actor_role,
                   r.device_token_id, r.ip, r.action, r.object_type, r.object_id, r.basis, r.detail
               )
         WHERE id = r.id
        RETURNING hash INTO prev;
    END LOOP;
END
$backfill$;
ALTER TABLE audit_auditevent ENABLE TRIGGER pgtrigger_audit_append_only_f6eda;
"""

# The chain link. SECURITY DEFINER: under row-level security the inserting role may not see the
# chain's previous event, the owner does; search_path is fixed so nobody can shadow what it calls.
# The advisory lock (class 'AUDT', key = the chain) makes writers of one chain take turns until
# their transaction ends; writers of other chains never wait. Under READ COMMITTED each statement
# here takes a fresh snapshot, so after the wait the previous writer's committed row is seen. (In
# REPEATABLE READ it would not be: such an insert fails on audit_chain_position rather than forking
# the chain.) Values the insert supplied for the chain columns are replaced: a writer cannot choose
# its place in the chain.
CHAIN_TRIGGER_SQL = """
CREATE FUNCTION audit_event_chain_link() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $link$
DECLARE
    chain bigint := COALESCE(NEW.municipality_id, 0);
    last_seq bigint;
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(1096107092, chain::int);
    SELECT e.chain_seq, e.hash INTO last_seq, last_hash
      FROM audit_auditevent e
     WHERE COALESCE(e.municipality_id, 0) = chain
     ORDER BY e.chain_seq DESC
     LIMIT 1;
    NEW.at := COALESCE(NEW.at, now());
    NEW.chain_seq := COALESCE(last_seq, 0) + 1;
    NEW.prev_hash := COALESCE(last_hash, repeat('0', 64));
    NEW.hash := audit_event_digest(
        NEW.prev_hash, NEW.municipality_id, NEW.chain_seq, NEW.at, NEW.actor_id, NEW.actor_username,
        NEW.actor_role, NEW.device_token_id, NEW.ip, NEW.action, NEW.object_type, NEW.object_id,
        NEW.basis, NEW.detail
    );
    RETURN NEW;
END
$link$;
CREATE TRIGGER audit_event_chain_link
    BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_chain_link();
"""

DROP_CHAIN_TRIGGER_SQL = """
DROP TRIGGER audit_event_chain_link ON audit_auditevent;
DROP FUNCTION audit_event_chain_link();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_append_only_audit_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="chain_seq",
            field=models.BigIntegerField(null=True, editable=False),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.RunSQL(DIGEST_SQL, DROP_DIGEST_SQL),
        migrations.RunSQL(BACKFILL_SQL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="chain_seq",
            field=models.BigIntegerField(
                db_default=0, editable=False, help_text="Position in its municipality's chain, from 1"
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(
                db_default="",
                editable=False,
                help_text="The previous event's hash (64 zeros for the first)",
                max_length=64,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(
                db_default="",
                editable=False,
                help_text="sha256 (hex) of audit_event_digest over this event",
                max_length=64,
            ),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                Coalesce("municipality", 0), models.F("chain_seq"), name="audit_chain_position"
            ),
        ),
        migrations.RunSQL(CHAIN_TRIGGER_SQL, DROP_CHAIN_TRIGGER_SQL),
    ]
