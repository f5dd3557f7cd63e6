"""A dead dependency is a 503, bad input a 400: never a 500, never internals in the answer."""

import io
import json
import logging
import shutil

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.backends.utils import CursorWrapper
from django.db.utils import InterfaceError, OperationalError
from rest_framework.test import APIClient

from clustering import artifacts
from musiccluster.parsers import MAX_JSON_DEPTH, SafeJSONParser
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import flagship_rows, train_run

pytestmark = pytest.mark.django_db

SECRET_HOST = 'could not connect to server: Connection refused\n\tIs the server running on host "db.internal.example"'


@pytest.fixture
def database_down(monkeypatch):
    """Every query fails as it does when Postgres is gone; undone before the test's rollback."""

    def dead(*args, **kwargs):
        raise OperationalError(SECRET_HOST)

    with monkeypatch.context() as patch:
        patch.setattr(CursorWrapper, "execute", dead)
        patch.setattr(CursorWrapper, "executemany", dead)
        yield


def test_a_page_answers_503_with_retry_after_when_the_database_is_down(client, database_down, caplog):
    with caplog.at_level(logging.ERROR, logger="musiccluster.errors"):
        response = client.get("/search/", {"q": "velvet"})
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "database is unavailable" in body and "db.internal" not in body and "OperationalError" not in body
    assert "db.internal.example" in caplog.text  # the log has it


def test_an_api_endpoint_answers_json_503_when_the_database_is_down(database_down, caplog):
    with caplog.at_level(logging.ERROR, logger="musiccluster.errors"):
        response = APIClient().get("/api/songs/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json() == {"detail": "The database is unavailable; try again in a little while."}
    assert "db.internal.example" in caplog.text


def test_interface_error_from_a_selector_is_a_503(client, monkeypatch):
    def closed(*args, **kwargs):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr("clustering.selectors.active_run", closed)
    response = client.get("/")
    assert response.status_code == 503 and "closed" not in response.content.decode()


@pytest.mark.parametrize("url", ["/search/?q=a%00b", "/search.json?q=%00", "/songs/a%00/", "/?x%00=1"])
def test_nul_in_the_address_is_a_400(client, url):
    response = client.get(url)
    assert response.status_code == 400 and "NUL" in response.content.decode()


def test_nul_in_api_query_form_and_json_is_a_400():
    api = APIClient()
    response = api.get("/api/songs/", {"search": "a\x00"})
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    user = get_user_model().objects.create_user("nul", password="pw-123456789")
    api.force_authenticate(user)
    response = api.post("/api/playlists/", {"name": "a\x00b"}, format="json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    response = api.post("/api/playlists/", "name=a%00b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


def test_nul_in_a_page_form_is_a_400(client):
    user = get_user_model().objects.create_user("nul", password="pw-123456789")
    client.force_login(user)
    response = client.post("/playlists/", {"name": "mix\x00"})
    assert response.status_code == 400 and "NUL" in response.content.decode()


@pytest.mark.parametrize("depth", [101, 200_000])
def test_deeply_nested_json_is_a_400(depth):
    body = "[" * depth + "]" * depth
    response = APIClient().post("/api/predict/", body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON nested too deeply" in response.json()["detail"]


def test_json_up_to_the_limit_still_parses():
    body = json.dumps(json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)).encode()
    assert SafeJSONParser().parse(io.BytesIO(body)) is not None


@pytest.fixture
def trained(tmp_path, settings, catalog_csv):
    settings.MODEL_DIR = tmp_path / "models"
    artifacts.cache_clear()
    assert songs_import_file(path=catalog_csv(flagship_rows(80))).status == "succeeded"
    run = train_run(k=3)
    assert run.is_active and run.index_path
    yield run
    artifacts.cache_clear()


def test_a_broken_artifact_is_a_503_that_names_the_problem_but_not_the_path(trained):
    song = Song.objects.order_by("id").first()
    shutil.rmtree(trained.index_path)  # the index is a folder of files
    artifacts.cache_clear()
    response = APIClient().get(f"/api/songs/{song.external_id}/similar/")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "missing" in detail and "similar-song index" in detail
    assert str(settings.MODEL_DIR) not in detail and ".index" not in detail and "run-" not in detail


def test_too_many_multipart_fields_is_a_400_not_a_500():
    user = get_user_model().objects.create_user("many", password="pw-123456789")
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/playlists/", {"name": "x", "songs": [f"s{i}" for i in range(1500)]}, format="multipart")
    assert response.status_code == 400 and "fields" in response.json()["detail"].lower()
