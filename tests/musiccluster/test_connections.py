"""Persistent database connections without a per-request `SELECT 1`: a
connection the database dropped costs one 503, and the next request
reconnects by itself."""

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test import RequestFactory

from musiccluster.celery import _check_connections_before_tasks
from tests.conftest import _require, flagship_rows


def _serve(path: str):
    """(status, body) of ``path`` through Django's WSGI handler, as gunicorn
    calls it: request_started and request_finished (which closes old
    connections) are sent, unlike the test client's. Also whether the
    default connection was still open before the response was closed."""
    environ = RequestFactory().get(path).environ
    status = []
    response = WSGIHandler()(environ, lambda s, headers, exc_info=None: status.append(s))
    open_before_close = connection.connection is not None
    try:
        body = b"".join(response)
    finally:
        response.close()  # request_finished
    return int(status[0].split()[0]), body, open_before_close


def test_web_requests_do_not_ping_the_database_first():
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is False


def test_celery_workers_check_a_connection_before_each_task():
    db = settings.DATABASES["default"]
    try:
        _check_connections_before_tasks()
        assert db["CONN_HEALTH_CHECKS"] is True
        assert connections["default"].health_check_enabled is True
    finally:
        db["CONN_HEALTH_CHECKS"] = False
        connections["default"].health_check_enabled = False


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_is_one_503_then_the_next_request_reconnects(catalog_csv):
    if connection.vendor != "postgresql":
        _require("a server that can drop a connection (DATABASE_URL=postgres://...)")
    from songs.services import songs_import_file

    assert songs_import_file(path=catalog_csv(flagship_rows(3))).status == "succeeded"
    assert _serve("/api/songs/")[0] == 200
    connection.ensure_connection()
    connection.close_at = None  # persistent, as with CONN_MAX_AGE in production
    pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone() == (True,)
    finally:
        other.close()

    status, body, open_before_close = _serve("/api/songs/")
    assert status == 503 and b"database is unavailable" in body
    assert not open_before_close  # closed by the 503 itself, not only at the request's end
    status, body, _ = _serve("/api/songs/")
    assert status == 200 and body.count(b'"artist_id"') == 3
    assert connection.connection.info.backend_pid != pid
