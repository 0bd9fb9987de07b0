"""Database pieces shared by apps."""

import pgtrigger

# Every syncable row carries `change_seq`, set from one database sequence by a trigger on every
# insert and update (bulk and raw SQL writes included), so a device's pull can tell what changed
# since it last received each row. The sequence is created by neighborhoods' migration 0003.
SYNC_SEQUENCE = "sync_change_seq"


def change_seq_trigger(name: str) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.Before,
        operation=pgtrigger.Insert | pgtrigger.Update,
        func=f"NEW.change_seq := nextval('{SYNC_SEQUENCE}'); RETURN NEW;",
    )
