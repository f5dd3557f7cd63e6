"""The fault suite: real services killed under real work (the Postgres +
Redis pass; the embedded pass skips it, saying why).

The module starts a private Postgres cluster (initdb, pg_ctl on a spare
port), a private Redis, a Celery worker (two processes) and gunicorn bound to
them, imports the demo catalog and trains a first model. Each test injects
one fault while work is under way:

1. a broker restart (without persistence) with a run labelling and another queued;
2. the database stopped (``pg_ctl stop -m immediate``) during an import's merge;
3. the same during a retrain's labelling;
4. ``kill -9`` of a worker process during labelling;
5. a full model directory.

and asserts what an operator would check: the catalog unchanged (a checksum
over songs_song), the labels unchanged and the previous model active when
the run failed (or complete labels of the new run when it recovered), the
worker alive, nothing left queued or running 60 s after the fault cleared,
the next run succeeding, and 503 with ``Retry-After`` (never 500, no host or
path) from a page and an API endpoint while the database is down.

The worker runs with short stale and sweep settings (WORKER_ENV) so the
sweeper's verdicts come in seconds. Faults are timed with locks: the test
holds the catalog's advisory lock (an import waits in its merge) or locks the
labels table (a run's chunks wait to attach the run's partition in labelling), so the fault always
hits the step it is about.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DEMO_CSV, _require, flagship_rows, write_csv
from tests.faults.stack import (
    PrivatePostgres,
    PrivateRedis,
    manage,
    postgres_bindir,
    start_web,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.worker

DB_NAME = "musiccluster_faults"
CATALOG_LOCK_ID = 7_240_001  # songs.services.CATALOG_LOCK_ID (imports and label write-back)
CHUNK_SONGS = 500  # 3,000 demo songs: six labelling chunks
STALE_SECONDS = 5
WORKER_ENV = {
    "WORK_SWEEP_SECONDS": "1",
    "QUEUED_RESEND_SECONDS": "3",
    "HEARTBEAT_SECONDS": "1",
    "TRAIN_STALE_SECONDS": str(STALE_SECONDS),
    "IMPORT_STALE_SECONDS": str(STALE_SECONDS),
    "TRAIN_BUSY_RETRY_SECONDS": "1",
}
# Nothing may stay queued or running longer than this after a fault clears.
RECOVERY_SECONDS = 60
# Columns of songs_song that are not the catalog's (none since labels moved to the engine's table).
LABEL_COLUMNS = ()
SECRETS = ("127.0.0.1", "/tmp", "Traceback", "psycopg", "OperationalError", "postgres")


@dataclass
class Reply:
    status_code: int
    headers: dict
    text: str

    def json(self):
        return json.loads(self.text)


def fetch(url: str, *, method: str = "GET", data: bytes | None = None, headers=None) -> Reply:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read().decode())


class Stack:
    def __init__(self, pg: PrivatePostgres, redis: PrivateRedis, work: Path):
        self.pg, self.redis, self.work = pg, redis, work
        self.model_dir = work / "models"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL")
            and not k.startswith("CELERY_TASK_DEFAULT")
        }
        self.env.update(
            DATABASE_URL=pg.url(DB_NAME),
            CELERY_BROKER_URL=redis.url,
            CELERY_RESULT_BACKEND=redis.url,
            SECRET_KEY="fault-suite-only",
            DEBUG="0",
            VAR_DIR=str(work),
            MODEL_DIR=str(self.model_dir),
            MEDIA_ROOT=str(work / "uploads"),
            CONN_MAX_AGE="0",
            API_ANON_RATE="1000000/minute",
            API_USER_RATE="1000000/minute",
            **WORKER_ENV,
        )
        self.worker = self.web = None
        self.base = self.token = ""

    # --- reading the private database ---------------------------------------

    def connect(self, **kwargs):
        import psycopg

        return psycopg.connect(self.pg.url(DB_NAME), connect_timeout=5, **kwargs)

    def sql(self, query: str, params=()) -> list[tuple]:
        with self.connect(autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def value(self, query: str, params=()):
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def catalog_checksum(self) -> str:
        columns = [
            c
            for (c,) in self.sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'songs_song' "
                "ORDER BY ordinal_position"
            )
            if c not in LABEL_COLUMNS
        ]
        cols = ", ".join(columns)
        return self.value(f"SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM (SELECT {cols} FROM songs_song) t")

    def labels_checksum(self) -> str:
        """The active run's label of every song."""
        return self.value(
            "SELECT md5(string_agg(concat_ws(':', s.id, l.cluster_id, l.map_x, l.map_y), '|' ORDER BY s.id)) "
            "FROM songs_song s LEFT JOIN clustering_songlabel l ON l.song_id = s.id "
            "AND l.run_id = (SELECT id FROM clustering_trainingrun WHERE is_active)"
        )

    def active_run(self) -> int | None:
        return self.value("SELECT id FROM clustering_trainingrun WHERE is_active")

    def run(self, run_id: int) -> dict:
        status, stage, error = self.sql(
            "SELECT status, stage, error FROM clustering_trainingrun WHERE id = %s", [run_id]
        )[0]
        return {"status": status, "stage": stage, "error": error}

    def unfinished(self) -> list[tuple]:
        return self.sql(
            "SELECT 'run', id, status, stage FROM clustering_trainingrun WHERE status IN ('queued', 'running') "
            "UNION ALL SELECT 'import', id, status, stage FROM songs_importjob WHERE status IN ('queued', 'running')"
        )

    def unlabelled_by(self, run_id: int) -> int:
        """Songs without a label of ``run_id`` in one of its clusters."""
        return self.value(
            "SELECT count(*) FROM songs_song s "
            "LEFT JOIN clustering_songlabel l ON l.song_id = s.id AND l.run_id = %s "
            "LEFT JOIN clustering_cluster c ON c.id = l.cluster_id WHERE c.run_id IS DISTINCT FROM %s",
            [run_id, run_id],
        )

    def lock_waiters(self, kind: str) -> int:
        return self.value(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = %s", [kind]
        )

    # --- the web server ------------------------------------------------------------

    def api(self, method: str, path: str, *, json_body=None, upload: Path | None = None, fields=None) -> Reply:
        """One request with the staff token: a JSON body, or a file upload with form fields."""
        headers = {"Authorization": f"Token {self.token}"}
        data = None
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif upload is not None:
            boundary = uuid.uuid4().hex
            parts = [
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                for k, v in (fields or {}).items()
            ]
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{upload.name}"\r\n'
                "Content-Type: text/csv\r\n\r\n".encode()
                + upload.read_bytes()
                + f"\r\n--{boundary}--\r\n".encode()
            )
            data, headers["Content-Type"] = b"".join(parts), f"multipart/form-data; boundary={boundary}"
        return fetch(f"{self.base}{path}", method=method, data=data, headers=headers)

    def train(self, **params) -> int:
        response = self.api("POST", "/api/runs/", json_body={"k": 4, "activation_chunk_songs": CHUNK_SONGS, **params})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def wait_run(self, run_id: int, timeout: float = 90) -> dict:
        return wait_until(
            lambda: (r := self.run(run_id))["status"] in ("succeeded", "failed") and r,
            timeout,
            f"run #{run_id} to finish ({self.run(run_id)})",
        )

    def import_file(self, path: Path) -> int:
        response = self.api("POST", "/api/imports/", upload=path, fields={"format": "flagship"})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def diagnosis(self) -> str:
        """The end of the worker's log, for a failed assertion."""
        return "\n--- worker log ---\n" + self.worker.text()[-6000:]

    def next_run_id(self) -> int:
        last, called = self.sql("SELECT last_value, is_called FROM clustering_trainingrun_id_seq")[0]
        return last + 1 if called else last


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        _require("the fault suite runs in the Postgres + Redis pass (DATABASE_URL=postgres://...)")
    if not os.environ.get("CELERY_BROKER_URL"):
        _require("the fault suite runs in the Postgres + Redis pass (CELERY_BROKER_URL=redis://...)")
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        _require("initdb and pg_ctl are needed to start a private Postgres")
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        _require("redis-server and redis-cli are needed to start a private Redis")
    work = tmp_path_factory.mktemp("faults")
    pg = PrivatePostgres(bindir)
    redis = PrivateRedis(work)
    s = Stack(pg, redis, work)
    t0 = time.monotonic()

    def step(what: str) -> None:
        print(f"[fault suite] {what}: {time.monotonic() - t0:.1f} s", flush=True)

    try:
        pg.init()
        pg.start()
        pg.create_database(DB_NAME)
        redis.start()
        step("postgres and redis")
        # One Django start-up for the three commands (each start-up costs seconds).
        out = manage(
            s.env,
            "shell",
            "-c",
            "from django.core.management import call_command as c; c('migrate', '--noinput', verbosity=0); "
            f"c('import_songs', {str(DEMO_CSV)!r}, '--no-progress'); "
            "c('create_api_token', 'ops', '--create-user', '--staff')",
        )
        s.token = out.strip().splitlines()[-1]
        step("migrated and imported")
        # The worker and the web server start side by side.
        web_starting = ThreadPoolExecutor(1).submit(start_web, s.env, work / "web.log")
        s.worker = start_worker(s.env, work / "worker.log", name="faults")
        s.web, s.base = web_starting.result()
        step("worker and web")
        first = s.wait_run(s.train())
        assert first["status"] == "succeeded", first
        step("trained")
        yield s
    finally:
        for proc in (s.web, s.worker):
            if proc is not None:
                proc.stop()
        redis.stop()
        pg.destroy()


@pytest.fixture
def baseline(stack):
    """What must survive the fault: the active run and the two checksums;
    afterwards the worker must still be alive and have logged no crash."""
    assert not stack.unfinished(), stack.unfinished()
    before = {"active": stack.active_run(), "catalog": stack.catalog_checksum(), "labels": stack.labels_checksum()}
    assert before["active"] is not None
    log_start = len(stack.worker.text())
    yield before
    assert stack.worker.alive(), stack.worker.text()[-5000:]
    assert "Unrecoverable" not in stack.worker.text()[log_start:]


# --- what every fault must leave -------------------------------------------------------


def assert_settled(stack: Stack, cleared_at: float) -> float:
    """Nothing queued or running within RECOVERY_SECONDS of the fault clearing; the seconds it took."""
    wait_until(
        lambda: not stack.unfinished(),
        RECOVERY_SECONDS - (time.monotonic() - cleared_at),
        f"runs and imports to settle ({stack.unfinished()})",
        interval=0.5,
    )
    return time.monotonic() - cleared_at


def assert_nothing_left(stack: Stack) -> None:
    # Failed runs keep no labels (nor a partition).
    assert not stack.sql(
        "SELECT r.id FROM clustering_trainingrun r WHERE r.status = 'failed' "
        "AND to_regclass('clustering_songlabel_run_' || r.id) IS NOT NULL"
    )
    assert not stack.sql("SELECT tablename FROM pg_tables WHERE tablename LIKE 'songs_import_stage_%%'")
    assert not [p.name for p in stack.model_dir.iterdir() if p.name.endswith(".part")]
    failed = [r for (r,) in stack.sql("SELECT id FROM clustering_trainingrun WHERE status = 'failed'")]
    left = [p.name for p in stack.model_dir.iterdir() if any(p.name.startswith(f"run-{r}.") for r in failed)]
    assert not left, left


def assert_unchanged(stack: Stack, before: dict) -> None:
    assert stack.catalog_checksum() == before["catalog"]
    assert stack.active_run() == before["active"]
    assert stack.labels_checksum() == before["labels"]


def assert_next_run_succeeds(stack: Stack) -> int:
    run_id = stack.train()
    run = stack.wait_run(run_id, timeout=RECOVERY_SECONDS)
    assert run["status"] == "succeeded", (run, stack.diagnosis())
    assert stack.active_run() == run_id
    assert stack.unlabelled_by(run_id) == 0
    return run_id


def assert_503_while_database_down(stack: Stack) -> None:
    for path in ("/", "/api/songs/", "/api/runs/"):
        started = time.monotonic()
        response = stack.api("GET", path)
        assert response.status_code == 503, (path, response.status_code, response.text[:500])
        assert time.monotonic() - started < 10, path
        assert response.headers.get("Retry-After"), path
        body = response.text
        assert "database" in body.lower(), body
        leaked = [s for s in SECRETS if s in body]
        assert not leaked, (path, leaked, body)
    health = fetch(f"{stack.base}/healthz")
    assert health.status_code == 503
    assert fetch(f"{stack.base}/healthz?quick=1").status_code == 200


# --- the faults -----------------------------------------------------------------------------


def test_broker_restart_with_a_run_labelling_and_another_queued(stack, baseline):
    lock = stack.connect()
    lock.execute("LOCK TABLE clustering_songlabel IN ACCESS EXCLUSIVE MODE")  # its chunks wait in labelling
    try:
        running = stack.train()
        wait_until(lambda: stack.run(running)["stage"] == "labelling", 60, "the run to reach labelling")
        queued = stack.train(k=5)
        assert stack.run(queued)["status"] == "queued"
        stack.redis.stop()  # every queued message, chunk and retry is lost
        refused = stack.api("POST", "/api/runs/", json_body={"k": 3})
        assert refused.status_code == 503 and refused.headers.get("Retry-After"), refused.text
        assert "broker" in refused.json()["detail"]
        lock.rollback()
        time.sleep(2)
        assert stack.active_run() == baseline["active"]
        stack.redis.start()
    finally:
        lock.close()
    cleared = time.monotonic()

    settled = assert_settled(stack, cleared)
    first, second = stack.run(running), stack.run(queued)
    # The labelling run lost its chunks with the broker: failed with its reason.
    assert first["status"] == "failed" and "no heartbeat" in first["error"], first
    # The queued run's message was lost too: re-sent by the sweeper, it ran.
    assert second["status"] == "succeeded", second
    assert stack.active_run() == queued and stack.unlabelled_by(queued) == 0
    assert stack.catalog_checksum() == baseline["catalog"]
    assert_nothing_left(stack)
    assert_next_run_succeeds(stack)
    print(f"broker restart: settled {settled:.1f} s after the broker came back")


def test_database_stops_during_an_imports_merge(stack, baseline, tmp_path):
    upload = write_csv(tmp_path / "more.csv", flagship_rows(200, start=700_000))
    lock = stack.connect(autocommit=True)
    lock.execute("SELECT pg_advisory_lock(%s)", [CATALOG_LOCK_ID])  # the merge waits for the catalog
    job = stack.import_file(upload)
    wait_until(
        lambda: (
            stack.value("SELECT stage FROM songs_importjob WHERE id = %s", [job]) == "merging"
            and stack.lock_waiters("advisory") >= 1
        ),
        60,
        "the import to wait in its merge",
    )
    stack.pg.stop("immediate")
    lock.close()
    try:
        assert_503_while_database_down(stack)
    finally:
        stack.pg.start()
    cleared = time.monotonic()

    settled = assert_settled(stack, cleared)
    status, error = stack.sql("SELECT status, error FROM songs_importjob WHERE id = %s", [job])[0]
    assert status == "failed" and "no heartbeat" in error, error
    assert_unchanged(stack, baseline)
    assert_nothing_left(stack)
    again = stack.import_file(upload)  # the same file, once the database is back
    wait_until(
        lambda: stack.value("SELECT status FROM songs_importjob WHERE id = %s", [again]) in ("succeeded", "failed"),
        RECOVERY_SECONDS,
        "the next import to finish",
    )
    assert stack.value("SELECT status FROM songs_importjob WHERE id = %s", [again]) == "succeeded"
    assert stack.value("SELECT count(*) FROM songs_song WHERE external_id LIKE 'SONG%%'") == 200
    assert_next_run_succeeds(stack)
    print(f"database stop during a merge: settled {settled:.1f} s after the database came back")


def test_database_stops_during_a_retrains_labelling(stack, baseline):
    lock = stack.connect()
    lock.execute("LOCK TABLE clustering_songlabel IN ACCESS EXCLUSIVE MODE")
    run_id = stack.train()
    wait_until(
        lambda: stack.run(run_id)["stage"] == "labelling" and stack.lock_waiters("relation") >= 1,
        60,
        "the run's chunks to wait in labelling",
    )
    stack.pg.stop("immediate")
    lock.close()
    try:
        assert_503_while_database_down(stack)
    finally:
        stack.pg.start()
    cleared = time.monotonic()

    settled = assert_settled(stack, cleared)
    run = stack.run(run_id)
    assert run["status"] == "failed" and "previous model stays active" in run["error"], run
    assert_unchanged(stack, baseline)
    assert_nothing_left(stack)
    assert_next_run_succeeds(stack)
    print(f"database stop during labelling: settled {settled:.1f} s after the database came back")


def test_kill_9_of_a_worker_process_during_labelling(stack, baseline):
    lock = stack.connect()
    lock.execute("LOCK TABLE clustering_songlabel IN ACCESS EXCLUSIVE MODE")
    try:
        run_id = stack.train()
        # Both pool processes hold a chunk, waiting for the table.
        wait_until(
            lambda: stack.run(run_id)["stage"] == "labelling" and stack.lock_waiters("relation") >= 2,
            60,
            "both worker processes to wait in a labelling chunk",
        )
        children = stack.worker.children()
        assert len(children) == 2, children
        os.kill(children[0], signal.SIGKILL)
        wait_until(lambda: children[0] not in stack.worker.children(), 30, "the killed process to be replaced")
        lock.rollback()
    finally:
        lock.close()
    cleared = time.monotonic()

    # Its chunk is requeued (late acknowledgement, rejected on worker loss)
    # and done by the other process or the one that replaced it.
    run = stack.wait_run(run_id, timeout=RECOVERY_SECONDS)
    assert run["status"] == "succeeded", (run, stack.diagnosis())
    assert "WorkerLostError" in stack.worker.text() or "SIGKILL" in stack.worker.text()
    settled = assert_settled(stack, cleared)
    assert stack.active_run() == run_id and stack.unlabelled_by(run_id) == 0
    assert stack.catalog_checksum() == baseline["catalog"]
    assert len(stack.worker.children()) == 2
    assert_nothing_left(stack)
    assert_next_run_succeeds(stack)
    print(f"kill -9 during labelling: the run finished {settled:.1f} s after the kill")


def test_a_full_model_directory_fails_the_run_and_the_next_one_succeeds(stack, baseline):
    run_id = stack.next_run_id()
    part = stack.model_dir / f"run-{run_id}.joblib.part"
    part.symlink_to("/dev/full")  # every write of the run's model: ENOSPC
    try:
        assert stack.train() == run_id
        run = stack.wait_run(run_id, timeout=RECOVERY_SECONDS)
        part_left = part.is_symlink()
    finally:
        part.unlink(missing_ok=True)  # space is back
    assert run["status"] == "failed" and "full" in run["error"], run
    assert not part_left  # the failed write removed its .part
    assert_settled(stack, time.monotonic())
    assert_unchanged(stack, baseline)
    assert_nothing_left(stack)
    assert_next_run_succeeds(stack)
