"""A database trigger refuses UPDATE of ticket events, so neither a bug nor a hand-written
query through the application's connection can rewrite a ticket's audit trail.

The one UPDATE allowed is Django's `on_delete=SET_NULL` of the actor when a user is deleted:
the actor becomes NULL and nothing else changes. DELETE is left to the cascade of a ticket's
deletion (the application never deletes tickets; `EventQuerySet.delete` refuses on its own),
and TRUNCATE to test runners, as for the audit app's records.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION tickets_event_refuse_update() RETURNS trigger AS $$
BEGIN
    IF NEW.actor_id IS NULL AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'ticket events are append-only (UPDATE refused)'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tickets_event_append_only
    BEFORE UPDATE ON tickets_event
    FOR EACH ROW EXECUTE FUNCTION tickets_event_refuse_update();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS tickets_event_append_only ON tickets_event;
DROP FUNCTION IF EXISTS tickets_event_refuse_update();
"""
SQLITE_FORWARD = """
CREATE TRIGGER tickets_event_no_update BEFORE UPDATE ON tickets_event
WHEN NOT (
    NEW.actor_id IS NULL AND NEW.id IS OLD.id AND NEW.ticket_id IS OLD.ticket_id
    AND NEW.kind IS OLD.kind AND NEW.field IS OLD.field AND NEW.before IS OLD.before
    AND NEW.after IS OLD.after AND NEW.internal IS OLD.internal
    AND NEW.created_at IS OLD.created_at
)
BEGIN SELECT RAISE(ABORT, 'ticket events are append-only (UPDATE refused)'); END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS tickets_event_no_update;"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0003_ticket_sla_deadline")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
