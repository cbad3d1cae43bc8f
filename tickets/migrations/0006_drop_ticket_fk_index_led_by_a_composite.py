import django.db.models.deletion
from django.db import migrations, models

# Only the single-column index Django made for Event.ticket goes (event_ticket leads with the
# same column). As an AlterField it would also drop and re-add the foreign key, and re-adding
# one validates every row under the lock the drop took (see 0005).
_INDEX = "tickets_event_ticket_id_c2d3d586"


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0005_drop_fk_indexes_led_by_composites"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{_INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{_INDEX}" ON "tickets_event" ("ticket_id")',
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="ticket",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="tickets.ticket",
                    ),
                ),
            ],
        ),
    ]
