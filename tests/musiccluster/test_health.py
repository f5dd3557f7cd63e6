"""/healthz tells the truth: each component, 503 when a required one is down, no internals shown."""

from pathlib import Path

import pytest
from django.db.backends.utils import CursorWrapper
from django.db.utils import OperationalError

from clustering import artifacts
from musiccluster import health
from musiccluster.celery import app
from songs.services import songs_import_file
from tests.conftest import flagship_rows, train_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(tmp_path, settings, catalog_csv):
    settings.MODEL_DIR = tmp_path / "models"
    artifacts.cache_clear()
    assert songs_import_file(path=catalog_csv(flagship_rows(80))).status == "succeeded"
    run = train_run(k=3)
    assert run.is_active and run.index_path
    yield run
    artifacts.cache_clear()


@pytest.fixture
def no_broker(settings):
    settings.CELERY_BROKER_URL = ""


def test_quick_is_a_process_check_without_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", {"quick": "1"})
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_no_model_yet_is_reported_but_healthy(client, no_broker):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["model"] == "no model yet" and body["index"] == "no model yet"
    assert body["workers"].startswith("not configured")


def test_a_trained_site_reports_model_and_index(client, trained, no_broker):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["model"] == f"ok (run #{trained.pk})" and body["index"] == f"ok (run #{trained.pk})"


def test_a_corrupt_index_is_a_503_without_the_path(client, trained, no_broker, tmp_path):
    path = Path(trained.index_path) / "vectors.npy"
    path.write_bytes(path.read_bytes()[:-100] + b"\x00" * 100)
    artifacts.cache_clear()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["model"].startswith("ok")
    assert body["index"].startswith("error: ") and "altered" in body["index"]
    assert str(tmp_path) not in response.content.decode() and ".index" not in response.content.decode()


def test_a_missing_model_file_is_a_503_even_when_cached(client, trained, no_broker, tmp_path):
    assert client.get("/healthz").status_code == 200  # loads and caches the model
    Path(trained.artifact_path).unlink()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["model"] == f"error: the model file of run #{trained.pk} is missing"
    assert str(tmp_path) not in response.content.decode()


def test_database_down_is_a_503_without_host_or_exception_text(client, no_broker, monkeypatch):
    def dead(*args, **kwargs):
        raise OperationalError('could not connect to server: host "db.internal.example"')

    with monkeypatch.context() as patch:
        patch.setattr(CursorWrapper, "execute", dead)
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "error: unreachable" and body["model"] == "unknown (database down)"
    assert "db.internal" not in response.content.decode() and "OperationalError" not in response.content.decode()


def test_broker_without_a_live_worker_is_a_503(client, settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(health, "_check_broker", lambda: "ok")
    monkeypatch.setattr(app.control, "ping", lambda **kwargs: [])
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["workers"].startswith("error: no worker answered")
    monkeypatch.setattr(app.control, "ping", lambda **kwargs: [{"w1@host": {"ok": "pong"}}])
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["workers"] == "ok (1 worker)"


def test_broker_down_hides_the_address(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["broker"] == "error: unreachable" and body["workers"] == "unknown (broker down)"
    assert "127.0.0.1" not in response.content.decode()


def test_healthz_reports_database_and_broker(client, settings, monkeypatch):
    # No worker runs during this test; test_broker_without_a_live_worker_is_a_503 covers the worker check.
    monkeypatch.setattr("musiccluster.health._check_workers", lambda: "ok (1 worker)")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    if settings.CELERY_BROKER_URL:
        assert body["broker"] == "ok"
    else:
        assert body["broker"].startswith("not configured")


def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error:")
