"""servicedesk.prepared.PreparedGet answers exactly what queryset.get() answers."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from departments.models import Service
from servicedesk.prepared import PreparedGet
from slas.selectors import SERVICE_FILING_RELATED
from tests import factories


def _graph(obj, depth=0) -> dict:
    """Field values of `obj` and of every related object select_related put in its cache."""
    values = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    values["_db"] = obj._state.db
    values["_adding"] = obj._state.adding
    for name, related in obj._state.fields_cache.items():
        values[f"->{name}"] = None if related is None else _graph(related, depth + 1)
    return values


def _outcome(call):
    try:
        return ("found", _graph(call()))
    except Exception as error:  # noqa: BLE001 - the exception type is what is compared
        return (type(error).__name__,)


def test_service_with_its_standard_version_and_calendar(org):
    own = factories.ServiceFactory(department=org.it, name="Own standard", standard=org.standard)
    queryset = Service.objects.select_related(*SERVICE_FILING_RELATED)
    prepared = PreparedGet(queryset, "pk")
    for service in (org.service, own, org.hr_service):
        for _ in range(2):  # compiled on the first call, reused on the second
            assert _outcome(lambda s=service: prepared.get(s.pk)) == _outcome(
                lambda s=service: queryset.get(pk=s.pk)
            )
    found = prepared.get(own.pk)
    assert found.standard.current_version.calendar.pk == org.standard.current_version.calendar_id


@pytest.mark.parametrize("value", ["IT", None, 2**70, -1, 987654321, 1.5, "", "x"])
def test_service_lookup_errors_are_django_s(org, value):
    queryset = Service.objects.select_related(*SERVICE_FILING_RELATED)
    prepared = PreparedGet(queryset, "pk")
    prepared.get(org.service.pk)  # compiled
    assert _outcome(lambda: prepared.get(value)) == _outcome(lambda: queryset.get(pk=value))


def test_first_call_out_of_range_then_a_real_one(org):
    queryset = Service.objects.select_related(*SERVICE_FILING_RELATED)
    prepared = PreparedGet(queryset, "pk")
    with pytest.raises(Service.DoesNotExist):
        prepared.get(2**70)
    assert prepared.get(org.service.pk) == org.service


def test_token_with_user_and_home_department(org):
    token = Token.objects.create(user=org.employee)
    queryset = Token.objects.select_related("user__home_department")
    prepared = PreparedGet(queryset, "key")
    for key in (token.key, token.key, "no-such-token", "", None):
        assert _outcome(lambda k=key: prepared.get(k)) == _outcome(
            lambda k=key: queryset.get(key=k)
        )
    assert prepared.get(token.key).user.home_department.slug == "finance"


def test_only_plain_querysets():
    with pytest.raises(ValueError):
        PreparedGet(Service.objects.filter(active=True), "pk")
