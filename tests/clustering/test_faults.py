"""Faults between the database, the broker and the workers, one service at a
time (both passes): a dead broker is refused before anything is stored, a
send lost after the commit is re-sent by the sweeper, a dead run is failed
within 60 s with its staged labels and files removed, and the next queued
run is sent at once."""

import errno
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from clustering import artifacts, services
from clustering.errors import TrainingError
from clustering.labels import labels_exist, labels_partition_create
from clustering.models import Cluster, SongLabel, TrainingRun
from clustering.tasks import activate_staged_task, label_chunk_task
from songs.background import Heartbeat
from songs.services import songs_import_file
from tests.conftest import flagship_rows, train_run, write_csv

pytestmark = pytest.mark.django_db(transaction=True)


def dead_broker_url() -> str:
    """A Redis URL on a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def broker_down(settings):
    settings.CELERY_BROKER_URL = dead_broker_url()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    return settings.CELERY_BROKER_URL


@pytest.fixture
def staff_api():
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user("ops", is_staff=True))
    return api


@pytest.fixture(autouse=True)
def model_dir(tmp_path, settings):
    settings.MODEL_DIR = tmp_path / "models"
    settings.MODEL_DIR.mkdir()
    artifacts.cache_clear()
    return settings.MODEL_DIR


@pytest.fixture
def sent(monkeypatch):
    """The ids whose training task was sent (nothing reaches a broker)."""
    ids: list[int] = []
    monkeypatch.setattr(services, "_training_run_send", ids.append)
    return ids


def test_broker_down_post_runs_answers_503_at_once_and_stores_nothing(broker_down, staff_api):
    started = time.monotonic()
    response = staff_api.post("/api/runs/", {"k": 4}, format="json")
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.content
    assert elapsed < 5, elapsed
    assert response["Retry-After"]
    detail = response.json()["detail"]
    assert "broker" in detail and "127.0.0.1" not in detail
    assert not TrainingRun.objects.exists()


def test_broker_down_train_command_fails_at_once(broker_down):
    started = time.monotonic()
    with pytest.raises(CommandError, match="broker"):
        call_command("train", "--k", "4")
    assert time.monotonic() - started < 5
    assert not TrainingRun.objects.exists()


def test_the_task_is_sent_after_commit_and_a_lost_send_is_resent(settings, staff_api, monkeypatch, sent):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(services, "broker_check", lambda: None)

    def broker_died(run_id):
        raise ConnectionError("broker went away between the check and the send")

    monkeypatch.setattr(services, "_training_run_send", broker_died)
    response = staff_api.post("/api/runs/", {"k": 4}, format="json")
    assert response.status_code == 202, response.content  # the row is committed; the send failed
    run = TrainingRun.objects.get()
    assert run.status == "queued" and run.enqueued_at is not None

    monkeypatch.setattr(services, "_training_run_send", sent.append)
    assert services.training_runs_resend() == []  # not yet: its message may still be on its way
    TrainingRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(seconds=61))
    assert services.training_runs_resend() == [run.pk] and sent == [run.pk]
    assert services.training_runs_resend() == []  # sent once per QUEUED_RESEND_SECONDS, not on every sweep


def test_create_sends_only_on_commit(settings, monkeypatch, sent):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(services, "broker_check", lambda: None)
    with transaction.atomic():
        run = services.training_run_create(k=4)
        assert sent == []
    assert sent == [run.pk]


def test_a_waiting_runs_message_counts_as_alive():
    run = services.training_run_create(k=4, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(seconds=600))
    services.training_run_message_alive(run_id=run.pk)
    assert services.training_runs_resend() == []


def running_run(*, heartbeat_age: float) -> TrainingRun:
    run = services.training_run_create(k=4, enqueue=False)
    assert services.training_run_claim(run_id=run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age), stage="labelling", progress=88
    )
    return run


def test_a_dead_run_is_failed_within_60_s_with_its_labels_and_files_removed(settings, model_dir, sent):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    # A dead run is failed at most stale + sweep seconds after its last heartbeat.
    stale = settings.TRAIN_STALE_SECONDS
    assert stale + settings.WORK_SWEEP_SECONDS <= 60
    alive = running_run(heartbeat_age=stale - 15)
    assert services.training_runs_fail_stale() == 0
    TrainingRun.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=stale + 1))
    queued = services.training_run_create(k=5, enqueue=False)
    (model_dir / f"run-{alive.pk}.joblib").write_bytes(b"model")
    (model_dir / f"run-{alive.pk}.index.npz.part").write_bytes(b"half an index")
    (model_dir / f"run-{alive.pk}.index.part").mkdir()  # half an index folder
    (model_dir / f"run-{alive.pk}.index.part" / "vectors.npy").write_bytes(b"half")
    (model_dir / f"run-{alive.pk}1.joblib").write_bytes(b"another run's model")
    labels_partition_create(alive.pk)  # the labels it wrote before it died
    SongLabel.objects.create(run=alive, song_id=1, cluster_id=None, map_x=0, map_y=0)

    assert services.training_runs_fail_stale() == 1
    run = TrainingRun.objects.get(pk=alive.pk)
    assert run.status == "failed" and f"no heartbeat for {stale} s" in run.error and "previous model" in run.error
    assert not SongLabel.objects.filter(run=run).exists() and not labels_exist(run.pk)
    assert sorted(p.name for p in model_dir.iterdir()) == [f"run-{alive.pk}1.joblib"]
    assert sent == [queued.pk]  # the next queued run starts at once


def test_chunks_and_activation_of_a_failed_run_do_nothing():
    run = running_run(heartbeat_age=0)
    services.training_run_fail(run_id=run.pk, error="gone")
    assert services.song_labels_stage(run_id=run.pk, lo=0, hi=10**9) == 0
    assert not SongLabel.objects.exists()
    with pytest.raises(TrainingError, match="failed"):
        services.training_run_activate_staged(run_id=run.pk, chunks=1)
    assert not TrainingRun.objects.filter(is_active=True).exists()


def test_a_failed_run_removes_its_files(model_dir):
    run = running_run(heartbeat_age=0)
    (model_dir / f"run-{run.pk}.joblib").write_bytes(b"model")
    (model_dir / f"run-{run.pk}.joblib.part").write_bytes(b"partial")
    services.training_run_fail(run_id=run.pk, error="Internal error")
    assert list(model_dir.iterdir()) == []


def test_a_full_disk_fails_the_write_with_its_reason_and_leaves_no_part(model_dir):
    def full(fh):
        fh.write(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(TrainingError, match="full"):
        artifacts._write_atomic(model_dir / "run-1.joblib", full)
    assert list(model_dir.iterdir()) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="heartbeat threads run on Postgres only")
def test_the_heartbeat_beats_while_a_step_is_silent():
    run = running_run(heartbeat_age=3600)
    before = TrainingRun.objects.get(pk=run.pk).heartbeat_at
    with Heartbeat(TrainingRun._meta.db_table, run.pk, interval=0.1):
        time.sleep(0.6)
    after = TrainingRun.objects.get(pk=run.pk).heartbeat_at
    assert after > before + timedelta(seconds=3000)


def test_only_the_last_successful_runs_keep_their_files(settings, model_dir):
    settings.MODEL_KEEP_RUNS = 2
    now = timezone.now()
    runs = []
    for age in (40, 30, 20, 10):  # oldest first; the oldest is the active one
        run = TrainingRun.objects.create(status="succeeded", finished_at=now - timedelta(minutes=age))
        model, index = model_dir / f"run-{run.pk}.joblib", model_dir / f"run-{run.pk}.index"
        model.write_bytes(b"m")
        index.mkdir()
        (index / "manifest.json").write_bytes(b"i")
        TrainingRun.objects.filter(pk=run.pk).update(artifact_path=str(model), index_path=str(index))
        runs.append(run)
    TrainingRun.objects.filter(pk=runs[0].pk).update(is_active=True)
    failed = TrainingRun.objects.create(status="failed", artifact_path="x")

    assert services.run_artifacts_prune() == [runs[1].pk]
    left = sorted(p.name for p in model_dir.iterdir())
    assert left == sorted(f"run-{r.pk}{s}" for r in (runs[0], runs[2], runs[3]) for s in (".joblib", ".index"))
    pruned = TrainingRun.objects.get(pk=runs[1].pk)
    assert pruned.artifact_path == pruned.index_path == ""
    assert TrainingRun.objects.get(pk=failed.pk).artifact_path == "x"
    assert services.run_artifacts_prune() == []


def test_labelling_tasks_are_requeued_on_worker_loss_and_chunks_are_idempotent():
    for task in (label_chunk_task, activate_staged_task):
        assert task.acks_late and task.reject_on_worker_lost
    with tempfile.TemporaryDirectory() as tmp:
        assert songs_import_file(path=write_csv(Path(tmp) / "c.csv", flagship_rows(60))).status == "succeeded"
    run = train_run(k=3)
    TrainingRun.objects.filter(pk=run.pk).update(status="running", is_active=False)
    first = services.song_labels_stage(run_id=run.pk, lo=0, hi=10**12)
    staged = sorted(SongLabel.objects.filter(run_id=run.pk).values_list("song_id", "cluster_id"))
    again = services.song_labels_stage(run_id=run.pk, lo=0, hi=10**12)  # a redelivered chunk
    assert first == again == 60
    assert sorted(SongLabel.objects.filter(run_id=run.pk).values_list("song_id", "cluster_id")) == staged
    assert {c for _, c in staged} <= set(Cluster.objects.filter(run=run).values_list("pk", flat=True))
