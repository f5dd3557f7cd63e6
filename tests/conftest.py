"""Shared fixtures: catalog CSV builders and a real Celery worker.

Environment switches for CI:
- MC_REQUIRE_SERVICES=1 turns "no broker/Postgres configured" skips into
  failures, so a CI run cannot pass while silently skipping the worker tests.
"""
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from songs.formats import FLAGSHIP_HEADER

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

BASE_ROW = {
    "id_songs": "0000000000000000000001",
    "name_song": "Velvet Harbor",
    "popularity_songs": "41",
    "duration_ms": "215000",
    "explicit": "0",
    "id_artists": "ART0000000000000000001",
    "release_date": "1999-04-12",
    "danceability": "0.61",
    "energy": "0.72",
    "key": "5",
    "loudness": "-6.4",
    "mode": "1",
    "speechiness": "0.041",
    "acousticness": "0.12",
    "instrumentalness": "1.55E-05",
    "liveness": "0.11",
    "valence": "0.55",
    "tempo": "121.9",
    "time_signature": "4",
    "followers": "12034",
    "genres": "['indie pop', 'chamber pop']",
    "name_artists": "The Amber Foxes",
    "popularity_artists": "55",
}


def flagship_rows(n: int, start: int = 1, **overrides) -> list[dict]:
    """n valid flagship rows with distinct ids and slightly varied features."""
    rows = []
    for i in range(start, start + n):
        row = dict(BASE_ROW)
        row["id_songs"] = f"SONG{i:018d}"
        row["name_song"] = f"Synthetic Song {i}"
        row["id_artists"] = f"ART{i % 7:019d}"
        row["name_artists"] = f"Synthetic Artist {i % 7}"
        row["energy"] = f"{(i % 100) / 100:.2f}"
        row["tempo"] = f"{80 + i % 100}.5"
        row.update(overrides)
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict], header=None, encoding="utf-8", newline="\n", bom=False) -> Path:
    header = list(header or FLAGSHIP_HEADER)
    with open(path, "w", encoding=encoding, newline="") as fh:
        if bom:
            fh.write("\ufeff")
        writer = csv.writer(fh, lineterminator=newline)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(h, "") for h in header])
    return path


@pytest.fixture
def catalog_csv(tmp_path):
    def make(rows, name="catalog.csv", **kwargs):
        return write_csv(tmp_path / name, rows, **kwargs)

    return make


def _require(reason: str):
    if os.environ.get("MC_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required by MC_REQUIRE_SERVICES=1 but unavailable: {reason}")
    pytest.skip(reason)


def start_worker(queue: str, *, concurrency: int = 2, name: str | None = None) -> subprocess.Popen:
    """A real `celery worker` subprocess on `queue`, bound to the test database.

    It runs in its own session so a test can kill it whole (os.killpg).
    """
    from django.conf import settings
    from django.db import connection

    if not settings.CELERY_BROKER_URL:
        _require("CELERY_BROKER_URL is not set: tasks run eagerly in-process")
    if connection.vendor != "postgresql":
        _require("a worker process needs a shared database (DATABASE_URL=postgres://...)")
    db = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["MODEL_DIR"] = str(settings.MODEL_DIR)
    env.setdefault("SECRET_KEY", settings.SECRET_KEY)
    env["CELERY_TASK_DEFAULT_QUEUE"] = queue
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    name = name or queue
    proc = subprocess.Popen(
        [celery, "-A", "musiccluster", "worker", "--loglevel=INFO", f"--concurrency={concurrency}", "--pool=prefork",
         "-Q", queue, "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    from musiccluster.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{proc.stdout.read()}")
        if app.control.ping(timeout=1, destination=[f"{name}@{os.uname().nodename}"]):
            return proc
    stop_worker(proc)
    raise RuntimeError("celery worker did not answer a ping within 60 s")


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """The shared worker of the suite, on a private queue of this test run."""
    from musiccluster.celery import app

    queue = f"test-{os.getpid()}"
    proc = start_worker(queue)
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    yield proc
    app.conf.task_default_queue = previous_queue
    stop_worker(proc)


@pytest.fixture
def task_runner(request):
    """'eager' in the embedded mode; a real worker when a broker and Postgres are configured."""
    from django.conf import settings

    if settings.CELERY_BROKER_URL:
        request.getfixturevalue("celery_worker_process")
        return "worker"
    return "eager"


def wait_for(predicate, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The production manifest storage needs `collectstatic` first; pages
    # under test only need the files to resolve.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _model_recheck_every_request(settings):
    """Tests switch runs back to back: ask which run is active on every request."""
    settings.MODEL_RECHECK_SECONDS = 0


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Caches keyed by run id (map sample, throttle history, loaded models):
    ids repeat across tests, so every test starts and ends with empty ones."""
    from django.core.cache import cache

    from clustering import artifacts

    cache.clear()
    artifacts.cache_clear()
    yield
    cache.clear()


def train_run(k=4, **kwargs):
    """Create, claim and execute a training run in-process; the finished run."""
    from clustering import services

    run = services.training_run_create(k=k, enqueue=False, **kwargs)
    services.training_run_claim(run_id=run.pk)
    return services.training_run_execute(run_id=run.pk)
