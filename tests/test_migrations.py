"""Migrations of the large tickets table stay cheap on it (SPEC: a million tickets)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


def _sql(*args: str) -> str:
    out = StringIO()
    call_command(
        "sqlmigrate", "tickets", "0005_drop_fk_indexes_led_by_composites", *args, stdout=out
    )
    return out.getvalue()


@pytest.mark.django_db
def test_dropping_the_fk_indexes_does_not_rebuild_the_foreign_keys():
    # An AlterField of a ForeignKey drops and re-adds its constraint: re-adding validates every
    # row of tickets_ticket while the ACCESS EXCLUSIVE lock of DROP CONSTRAINT is held.
    sql = _sql()
    assert "CONSTRAINT" not in sql
    assert sql.count("DROP INDEX") == 3


@pytest.mark.django_db
def test_restoring_the_fk_indexes_does_not_rebuild_the_foreign_keys():
    sql = _sql("--backwards")
    assert "CONSTRAINT" not in sql
    assert sql.count("CREATE INDEX") == 3
