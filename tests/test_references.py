"""Ticket references are `<CODE>-<n>`, sequential per supplier, never duplicated."""

import threading

import pytest
from django.db import connection

from tickets import services
from tickets.models import Ticket


def test_references_are_sequential_per_supplier(org):
    refs = [
        services.ticket_create(requester=org.employee, service=s, title="x").reference
        for s in (org.service, org.service, org.hr_service, org.service)
    ]
    assert refs == ["IT-1", "IT-2", "HR-1", "IT-3"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_filing_never_duplicates_a_reference():
    from tests.factories import build_org

    org = build_org()
    threads, errors = [], []
    per_thread = 8

    def file_some():
        try:
            for _ in range(per_thread):
                services.ticket_create(requester=org.employee, service=org.service, title="race")
        except Exception as exc:  # surfaced below: the test must see every failure
            errors.append(exc)
        finally:
            connection.close()

    for _ in range(6):
        threads.append(threading.Thread(target=file_some))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(
        Ticket.objects.filter(supplier_department=org.it).values_list("number", flat=True)
    )
    assert numbers == list(range(1, 6 * per_thread + 1))
    assert Ticket.objects.values("reference").distinct().count() == 6 * per_thread
