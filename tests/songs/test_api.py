"""The imports API: staff upload a CSV, the same job and task as the admin upload run it.

In the embedded mode the task runs eagerly; with CELERY_BROKER_URL and a
Postgres DATABASE_URL it runs in a real worker process (see conftest).
"""
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from songs.models import ImportJob, Song
from tests.conftest import flagship_rows, wait_for, write_csv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("ops", is_staff=True)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def cleanup_uploads():
    yield
    for job in ImportJob.objects.exclude(file=""):
        job.file.delete(save=False)


def finished(api, job_id):
    def done():
        body = api.get(f"/api/imports/{job_id}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_for(done)


def test_staff_upload_imports_the_file(api, staff, tmp_path, task_runner, cleanup_uploads):
    api.force_authenticate(staff)
    path = write_csv(tmp_path / "upload.csv", flagship_rows(25))
    with open(path, "rb") as fh:
        response = api.post("/api/imports/", {"file": fh, "format": "flagship"}, format="multipart")
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["file_name"] == "upload.csv" and accepted["created_by"] == "ops"
    assert accepted["status"] in ("queued", "running", "succeeded")
    body = finished(api, accepted["id"])
    assert body["status"] == "succeeded", body["error"]
    assert body["rows_created"] == 25 and body["progress"] == 100 and body["format"] == "flagship"
    assert Song.objects.count() == 25
    listed = api.get("/api/imports/").json()
    assert [j["id"] for j in listed["results"]] == [accepted["id"]]


def test_rejected_rows_are_reported(api, staff, tmp_path, task_runner, cleanup_uploads):
    api.force_authenticate(staff)
    rows = flagship_rows(10)
    for row in rows[:4]:
        row["valence"] = "2.5"
    with open(write_csv(tmp_path / "bad.csv", rows), "rb") as fh:
        job_id = api.post("/api/imports/", {"file": fh}, format="multipart").json()["id"]
    body = finished(api, job_id)
    assert body["status"] == "failed" and "4 of 10 rows (40%) are invalid" in body["error"]
    assert body["rows_rejected"] == 4 and len(body["rejected_rows"]) == 4
    first = body["rejected_rows"][0]
    assert first["line"] == 2 and first["column"] == "valence" and "out of range" in first["reason"]
    assert Song.objects.count() == 0


def test_only_staff(api, tmp_path):
    path = write_csv(tmp_path / "x.csv", flagship_rows(2))
    with open(path, "rb") as fh:
        anonymous = api.post("/api/imports/", {"file": fh}, format="multipart")
    assert anonymous.status_code == 401 and "credentials" in anonymous.json()["detail"]
    api.force_authenticate(get_user_model().objects.create_user("listener"))
    with open(path, "rb") as fh:
        assert api.post("/api/imports/", {"file": fh}, format="multipart").status_code == 403
    assert api.get("/api/imports/").status_code == 403
    assert not ImportJob.objects.exists()


def test_bad_requests_name_the_field(api, staff, tmp_path):
    api.force_authenticate(staff)
    missing = api.post("/api/imports/", {"format": "auto"}, format="multipart")
    assert missing.status_code == 400 and missing.json()["detail"] == "file: No file was submitted."
    with open(write_csv(tmp_path / "x.csv", flagship_rows(2)), "rb") as fh:
        wrong = api.post("/api/imports/", {"file": fh, "format": "excel"}, format="multipart")
    assert wrong.status_code == 400 and wrong.json()["detail"] == 'format: "excel" is not a format; choose one of auto, flagship, spotify.'
    as_json = api.post("/api/imports/", {"file": "x"}, format="json")
    assert as_json.status_code == 415 and as_json.json()["detail"] == 'Unsupported media type "application/json" in request.'
    assert api.get("/api/imports/999999/").json() == {"detail": "No ImportJob matches the given query."}
    assert not ImportJob.objects.exists()
