"""An admin uploads a CSV; the import runs as a Celery task.

In the embedded mode the task runs eagerly; with CELERY_BROKER_URL and a
Postgres DATABASE_URL it runs in a real worker process (see conftest).
"""

import pytest
from django.contrib.auth import get_user_model

from songs.models import ImportJob, Song
from tests.conftest import flagship_rows, wait_for, write_csv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(user)
    return client


def test_admin_upload_runs_import_task(admin_client, tmp_path, task_runner):
    path = write_csv(tmp_path / "upload.csv", flagship_rows(25))
    with open(path, "rb") as fh:
        response = admin_client.post("/admin/songs/importjob/add/", {"upload": fh, "import_format": "auto"})
    assert response.status_code == 302, response.content[:2000]
    job = ImportJob.objects.get()
    try:
        job = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).first())
        assert job.status == "succeeded", job.error
        assert job.rows_created == 25 and job.created_by.username == "boss"
        assert Song.objects.count() == 25
        page = admin_client.get(f"/admin/songs/importjob/{job.pk}/change/")
        assert page.status_code == 200
        assert b"<progress" in page.content and b"succeeded" in page.content
    finally:
        job.file.delete(save=False)


def test_admin_upload_of_bad_file_shows_rejection(admin_client, tmp_path, task_runner):
    rows = flagship_rows(10)
    for row in rows[:4]:
        row["valence"] = "2.5"
    path = write_csv(tmp_path / "bad.csv", rows)
    with open(path, "rb") as fh:
        admin_client.post("/admin/songs/importjob/add/", {"upload": fh, "import_format": "auto"})
    job = ImportJob.objects.get()
    try:
        job = wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).first())
        assert job.status == "failed"
        assert "4 of 10 rows (40%) are invalid" in job.error
        assert Song.objects.count() == 0
        page = admin_client.get(f"/admin/songs/importjob/{job.pk}/change/").content.decode()
        assert "out of range (2.5)" in page and "valence" in page
    finally:
        job.file.delete(save=False)


def test_redelivered_task_is_a_no_op(tmp_path):
    """acks_late may deliver a task twice; the conditional claim makes the second one skip."""
    from songs import services
    from songs.tasks import import_songs_task

    job = services.import_job_create(file_name="x.csv")
    assert services.import_job_claim(job_id=job.pk) is True
    assert services.import_job_claim(job_id=job.pk) is False
    assert import_songs_task.apply(args=[job.pk]).get() == "skipped"


def test_upload_missing_on_the_worker_fails_with_a_clear_reason(tmp_path):
    from django.core.files.base import ContentFile

    from songs import services
    from songs.tasks import import_songs_task

    job = services.import_job_create(file_name="gone.csv", uploaded_file=ContentFile(b"x", name="gone.csv"))
    job.file.delete(save=False)
    assert import_songs_task.apply(args=[job.pk]).get() == "failed"
    job.refresh_from_db()
    assert "MEDIA_ROOT must be storage the workers share" in job.error
