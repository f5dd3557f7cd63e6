"""Import jobs that lose their broker or their worker (both passes): a dead
broker is refused before anything is stored, a queued job whose message was
lost is re-sent, a dead import is failed within 60 s and its staging table
dropped."""

import socket
import time
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from songs import services
from songs.models import ImportJob, Song
from tests.conftest import flagship_rows, write_csv

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_api():
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user("ops", is_staff=True))
    return api


@pytest.fixture
def cleanup_uploads():
    yield
    for job in ImportJob.objects.exclude(file=""):
        job.file.delete(save=False)


def stage_tables() -> list[str]:
    with connection.cursor() as cursor:
        return [t for t in connection.introspection.table_names(cursor) if t.startswith("songs_import_stage_")]


def test_broker_down_post_imports_answers_503_at_once(settings, staff_api, tmp_path, cleanup_uploads):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    path = write_csv(tmp_path / "upload.csv", flagship_rows(5))
    started = time.monotonic()
    with open(path, "rb") as fh:
        response = staff_api.post("/api/imports/", {"file": fh, "format": "flagship"}, format="multipart")
    assert response.status_code == 503, response.content
    assert time.monotonic() - started < 5
    assert response["Retry-After"] and "broker" in response.json()["detail"]
    assert not ImportJob.objects.exists() and not Song.objects.exists()


def test_a_queued_job_whose_message_was_lost_is_sent_again(settings, monkeypatch, cleanup_uploads):
    sent = []
    monkeypatch.setattr(services, "_import_job_send", lambda job_id, fmt: sent.append((job_id, fmt)))
    job = services.import_job_create(file_name="a.csv", fmt="flagship", uploaded_file=ContentFile(b"x"))
    fresh = services.import_job_create(file_name="b.csv", uploaded_file=ContentFile(b"x"))
    ImportJob.objects.filter(pk=fresh.pk).update(enqueued_at=timezone.now())
    ImportJob.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(seconds=61))
    assert services.import_jobs_resend() == [job.pk] and sent == [(job.pk, "flagship")]
    assert services.import_jobs_resend() == []


def test_a_dead_import_is_failed_within_60_s_and_its_staging_table_dropped(settings):
    stale = settings.IMPORT_STALE_SECONDS  # failed at most stale + sweep seconds after its last heartbeat
    assert stale + settings.WORK_SWEEP_SECONDS <= 60
    job = services.import_job_create(file_name="big.csv")
    assert services.import_job_claim(job_id=job.pk)
    job.refresh_from_db()
    assert job.heartbeat_at is not None
    services._Stage(job.pk).create()
    orphan = services.import_job_create(file_name="old.csv")
    services._Stage(orphan.pk).create()  # a stage left by a job that already ended
    services._Stage(orphan.pk).artist_lines_write(np.array([2, 3]))  # and its list of artists' lines
    ImportJob.objects.filter(pk=orphan.pk).update(status="failed")
    ImportJob.objects.filter(pk=job.pk).update(
        stage="merging", heartbeat_at=timezone.now() - timedelta(seconds=stale - 15)
    )
    assert services.import_jobs_fail_stale() == 0
    assert stage_tables() == [f"songs_import_stage_{job.pk}"]  # a live job keeps its stage

    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=stale + 1))
    assert services.import_jobs_fail_stale() == 1
    job.refresh_from_db()
    assert job.status == "failed" and f"no heartbeat for {stale} s" in job.error and job.finished_at
    assert stage_tables() == []


def test_an_import_keeps_its_heartbeat(tmp_path):
    path = write_csv(tmp_path / "c.csv", flagship_rows(20))
    job = services.songs_import_file(path=path)
    assert job.status == "succeeded" and job.heartbeat_at is not None
