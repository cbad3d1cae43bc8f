"""/healthz answers 200 when database and broker answer, 503 naming the failing part."""

from django.db import connection


def test_healthz_ok_when_database_and_broker_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_healthz_names_broker_when_unreachable(client, db, settings):
    from servicedesk.celery import app

    original = app.conf.broker_url
    # A port nothing listens on: the broker check must fail fast and say so.
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable"}


def test_healthz_names_database_when_unreachable(client, db):
    settings_dict = connection.settings_dict
    original = settings_dict["PORT"]
    connection.close()
    settings_dict["PORT"] = 1
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        settings_dict["PORT"] = original
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


def test_healthz_needs_no_login(client, db):
    assert client.get("/healthz").status_code in (200, 503)
