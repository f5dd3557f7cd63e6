"""A broker restart with a worker attached (the Postgres + worker pass only).

The test starts its own Redis on a spare port and its own worker on it, so
that it can stop and restart the broker without touching the shared one.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from clustering import services
from clustering.models import TrainingRun
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import ROOT, _require, wait_for
from tests.faults.stack import PrivateRedis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

DEMO = settings.BASE_DIR / "fixtures" / "demo_catalog.csv"


@pytest.fixture
def private_redis(tmp_path):
    if not settings.CELERY_BROKER_URL:
        _require("CELERY_BROKER_URL is not set: tasks run eagerly in-process")
    if connection.vendor != "postgresql":
        _require("a worker process needs a shared database (DATABASE_URL=postgres://...)")
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        _require("redis-server and redis-cli are needed to start a private broker")
    redis = PrivateRedis(tmp_path)
    try:
        redis.start()
    except Exception as exc:
        _require(f"a private Redis could not be started: {exc}")
    yield redis
    redis.stop()


def worker_env(broker_url: str, **extra: str) -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        CELERY_BROKER_URL=broker_url,
        CELERY_RESULT_BACKEND=broker_url,
        CELERY_TASK_DEFAULT_QUEUE="celery",
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        MODEL_DIR=str(settings.MODEL_DIR),
        SECRET_KEY=settings.SECRET_KEY,
        **extra,
    )
    return env


@pytest.fixture
def private_worker(private_redis, tmp_path):
    log = tmp_path / "worker.log"
    env = worker_env(private_redis.url, WORK_SWEEP_SECONDS="1", QUEUED_RESEND_SECONDS="3")
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [celery, "-A", "musiccluster", "worker", "--loglevel=INFO", "--concurrency=2", "-n", "faults@%h"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: proc.poll() is not None or " ready." in log.read_text(), timeout=60)
        if proc.poll() is not None:
            pytest.fail(f"the worker exited at start:\n{log.read_text()}")
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def catalog_checksum() -> str:
    rows = Song.objects.order_by("external_id").values_list("external_id", "name", *Song.FEATURES)
    return hashlib.sha256(repr(list(rows)).encode()).hexdigest()


def manage(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_broker_restart_leaves_the_worker_consuming_and_no_run_lost(private_redis, private_worker):
    proc, log = private_worker
    assert songs_import_file(path=DEMO).status == "succeeded"
    catalog = catalog_checksum()
    env = worker_env(private_redis.url)
    first = manage("train", "--k", "4", "--wait", "--timeout", "120", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    previous = TrainingRun.objects.get(is_active=True)

    private_redis.stop()
    # With the broker down the command answers at once (a Django start-up,
    # as long as its --help, plus the check), and stores nothing.
    started = time.monotonic()
    assert manage("train", "--help", env=env).returncode == 0
    start_up = time.monotonic() - started
    started = time.monotonic()
    refused = manage("train", "--k", "5", env=env, timeout=60)
    assert refused.returncode != 0 and "broker" in refused.stderr, refused.stderr[-3000:]
    assert time.monotonic() - started < start_up + 8
    assert TrainingRun.objects.count() == 1
    # A run stored while its message was lost (sent into the outage).
    lost = services.training_run_create(k=5, enqueue=False)
    TrainingRun.objects.filter(pk=lost.pk).update(enqueued_at=timezone.now() - timedelta(seconds=60))
    assert TrainingRun.objects.get(is_active=True) == previous
    time.sleep(3)
    private_redis.start()

    # The worker reconnects, its sweeper re-sends the lost run, which succeeds.
    run = wait_for(lambda: TrainingRun.objects.filter(pk=lost.pk, status__in=["succeeded", "failed"]).first(), 120)
    assert run.status == "succeeded", run.error
    assert run.is_active and run.n_clusters == 5
    again = manage("train", "--k", "3", "--wait", "--timeout", "120", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert proc.poll() is None, log.read_text()[-5000:]
    text = log.read_text()
    assert "Unrecoverable" not in text and "Connection to broker lost" in text
    assert "/None)" in text  # it retries for as long as the outage lasts (by default it gives up after 100)
    assert catalog_checksum() == catalog
    assert not TrainingRun.objects.filter(status__in=["queued", "running"]).exists()
