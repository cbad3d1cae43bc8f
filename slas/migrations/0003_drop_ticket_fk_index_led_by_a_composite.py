import django.db.models.deletion
from django.db import migrations, models

# Only the single-column index Django made for SlaClock.ticket goes (clock_unique_metric leads
# with the same column). As an AlterField it would also drop and re-add the foreign key, and
# re-adding one validates every row under the lock the drop took (see tickets 0005).
_INDEX = "slas_slaclock_ticket_id_2d08338d"


class Migration(migrations.Migration):
    dependencies = [
        ("slas", "0002_replay_job"),
        ("tickets", "0006_drop_ticket_fk_index_led_by_a_composite"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=f'DROP INDEX IF EXISTS "{_INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{_INDEX}" ON "slas_slaclock" ("ticket_id")',
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="slaclock",
                    name="ticket",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="clocks",
                        to="tickets.ticket",
                    ),
                ),
            ],
        ),
    ]
