"""Migrations of the large ticket tables stay cheap on them (SPEC: a million tickets)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

# (app, migration, indexes it drops): the foreign-key indexes a composite index makes redundant.
INDEX_DROPS = [
    ("tickets", "0005_drop_fk_indexes_led_by_composites", 3),
    ("tickets", "0006_drop_ticket_fk_index_led_by_a_composite", 1),
    ("slas", "0003_drop_ticket_fk_index_led_by_a_composite", 1),
]


def _sql(app: str, migration: str, *args: str) -> str:
    out = StringIO()
    call_command("sqlmigrate", app, migration, *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "migration", "indexes"), INDEX_DROPS)
def test_dropping_the_fk_indexes_does_not_rebuild_the_foreign_keys(app, migration, indexes):
    # An AlterField of a ForeignKey drops and re-adds its constraint: re-adding validates every
    # row of the table while the ACCESS EXCLUSIVE lock of DROP CONSTRAINT is held.
    sql = _sql(app, migration)
    assert "CONSTRAINT" not in sql
    assert sql.count("DROP INDEX") == indexes


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "migration", "indexes"), INDEX_DROPS)
def test_restoring_the_fk_indexes_does_not_rebuild_the_foreign_keys(app, migration, indexes):
    sql = _sql(app, migration, "--backwards")
    assert "CONSTRAINT" not in sql
    assert sql.count("CREATE INDEX") == indexes
