"""Shared fixtures: catalog CSV builders, the demo catalog (imported and
trained once per session, copied into each test that asks for it) and a real
Celery worker.

The demo catalog fixtures (each gives a test its own copy, in its own
database and model folder, whatever the test does to it):

- ``demo_catalog``: fixtures/demo_catalog.csv (3,000 songs) as the importer
  stores it; no training run. The value is its ImportJob.
- ``demo_catalog_with_script_song``: the same plus one song titled
  ``SCRIPT_TITLE`` by an artist named ``SCRIPT_ARTIST`` (3,001 songs); no run.
  The value is that song.
- ``trained_demo``: ``demo_catalog`` clustered with k=4, active, with its
  similar-song index. The value is the run.
- ``trained_demo_with_script_song``: ``demo_catalog_with_script_song``
  clustered with k=4, active, with its index. The value is the run.
- ``scanned_demo_with_script_song``: ``demo_catalog_with_script_song`` with
  k chosen by a scan of 3-6 on a 1,000-song sample (the dashboard's k-scan
  charts), active. The value is the run.
- ``trained_demo_with_twins``: the demo catalog plus two copies of its eighth
  song (ids dup-1 and dup-2, the second with its title padded and upper-cased),
  clustered with k=4, active. The value is {"run": run, "seed": eighth song}.

Tests that are about training itself (activation, rollback, identity, the
k scan) still train, on top of these or on small synthetic catalogs.

Environment switches for CI:
- MC_REQUIRE_SERVICES=1 turns "no broker/Postgres configured" skips into
  failures, so a CI run cannot pass while silently skipping the worker tests.
"""

import csv
import fcntl
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from songs.formats import FLAGSHIP_HEADER

if TYPE_CHECKING:
    from songs.models import Song

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_CSV = ROOT / "fixtures" / "demo_catalog.csv"
# The song the escaping tests look for: its title is a script tag, its artist's name is markup.
SCRIPT_TITLE = "<script>alert(1)</script>"
SCRIPT_ARTIST = "Mallory <b>&</b> Co"
SCRIPT_TITLE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
# The password of the users the page tests sign in with.
PASSWORD = "pw-123456789"

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


def pytest_collection_modifyitems(config, items):
    """The schemathesis run first: the longest single test (a server to set
    up, then a minute of requests) should not be the one a parallel run
    waits for at the end."""
    items.sort(key=lambda item: item.nodeid.split("::")[0] != "tests/musiccluster/test_schema_fuzz.py")


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
    # No sweeper: the test database is emptied and refilled between tests
    # (run ids repeat), which no production database is; the sweeper is
    # tested on stacks of its own (tests/faults) and by calling it.
    env["WORK_SWEEP_SECONDS"] = "0"
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    name = name or queue
    proc = subprocess.Popen(
        [
            celery,
            "-A",
            "musiccluster",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}@%h",
        ],
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
    """'eager' in the embedded mode; a real worker when a broker and Postgres are configured.

    A test that used the worker ends when the worker is idle: what a task
    does after the state the test waited for (a run's clean-up after it
    succeeded) never runs into the next test's database.
    """
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        yield "eager"
        return
    request.getfixturevalue("celery_worker_process")
    yield "worker"
    worker_idle_wait()


def worker_idle_wait(timeout: float = 60.0) -> None:
    """Wait until the suite's worker runs, holds and schedules no task."""
    from musiccluster.celery import app

    destination = [f"{app.conf.task_default_queue}@{os.uname().nodename}"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inspect = app.control.inspect(destination=destination, timeout=1.0)
        replies = [inspect.active(), inspect.reserved(), inspect.scheduled()]
        busy = [task for found in replies for tasks in (found or {}).values() for task in tasks]
        if all(replies) and not busy:  # every question answered (None: no reply yet)
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker still had tasks {timeout:.0f} s after the test: {busy}")


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
def _models_in_tmp(settings, tmp_path):
    """Model files of each test in a folder of its own: run ids repeat across
    tests (and across processes when the suite runs in parallel)."""
    settings.MODEL_DIR = tmp_path / "models"


@pytest.fixture(autouse=True)
def _slots_in_tmp(settings, tmp_path):
    """Expensive-request slots of each test its own (clustering.limits): the
    slot files are host-wide, and the test processes run side by side."""
    settings.EXPENSIVE_SLOT_DIR = tmp_path / "slots"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create users and sign in with passwords but test no hasher: the
    default one (PBKDF2, a million rounds) cost ~0.3 s per user and sign-in."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _model_recheck_every_request(settings):
    """Tests switch runs back to back: ask which run is active on every
    request, and answer from its index at once (the background load of a
    new run's index is tested on its own, in tests/clustering/test_artifacts.py)."""
    settings.MODEL_RECHECK_SECONDS = 0
    settings.INDEX_LOAD_IN_BACKGROUND = False


def pytest_configure(config):
    """In-process tests keep the cache per process (LocMemCache): the default
    is a folder under VAR_DIR shared by every process of the machine, which
    two test processes clearing it around each test would empty for each other.
    (Servers the tests start get their own VAR_DIR, so their own folder.)"""
    from django.test.utils import override_settings

    override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        THROTTLE_HISTORY_DIR=None,  # throttle histories in that cache too (tests/musiccluster/test_throttles.py: files)
    ).enable()


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Caches keyed by run id (map sample, throttle history, loaded models):
    ids repeat across tests, so every test starts and ends with empty ones."""
    from django.core.cache import cache

    from clustering import artifacts, index_labels

    cache.clear()
    artifacts.cache_clear()
    index_labels.cache_clear()
    yield
    cache.clear()


def train_run(k=4, **kwargs):
    """Create, claim and execute a training run in-process; the finished run."""
    from clustering import services

    run = services.training_run_create(k=k, enqueue=False, **kwargs)
    services.training_run_claim(run_id=run.pk)
    return services.training_run_execute(run_id=run.pk)


def active_labels() -> dict:
    """{song id: its label in the active run (songs.labels.ActiveLabel)} of every labelled song."""
    from songs.labels import labels_of
    from songs.models import Song

    return labels_of(Song.objects.values_list("id", flat=True))


def cluster_members(cluster):
    """The songs of ``cluster`` by its run's labels (a queryset)."""
    from clustering.models import SongLabel
    from songs.models import Song

    return Song.objects.filter(
        pk__in=SongLabel.objects.filter(run_id=cluster.run_id, cluster_id=cluster.pk).values("song_id")
    )


def active_cluster_labels() -> list:
    """Every song's model label (cluster label) in the active run, in id order (None: unlabelled)."""
    from songs.models import Song

    found = active_labels()
    return [
        found[i].cluster_label if i in found else None for i in Song.objects.order_by("id").values_list("id", flat=True)
    ]


# --- the demo catalog, imported and trained once per session -------------------------


def script_song_rows() -> list[dict]:
    """The flagship row of the song titled SCRIPT_TITLE by SCRIPT_ARTIST."""
    return flagship_rows(1, start=9001, name_song=SCRIPT_TITLE, name_artists=SCRIPT_ARTIST)


def song_twin(song, external_id: str, **changes):
    """A copy of ``song`` under another id (same artist and title unless changed)."""
    from django.utils import timezone

    from songs.models import Song

    now = timezone.now()
    fields = {f.attname: getattr(song, f.attname) for f in Song._meta.concrete_fields if f.attname != "id"}
    fields.update(external_id=external_id, created_at=now, updated_at=now, **changes)
    return Song.objects.create(**fields)


def _snapshot_models() -> list:
    """The tables an import and a training run write, parents first."""
    from clustering.models import Cluster, SongLabel, TrainingRun
    from songs.models import Artist, ImportJob, Song

    return [Artist, ImportJob, TrainingRun, Cluster, Song, SongLabel]


def _db_values(fields, row, connection) -> list:
    """A row's values as the database takes them (what saving the model would write)."""
    return [field.get_db_prep_save(value, connection) for field, value in zip(fields, row, strict=True)]


class CatalogSnapshot:
    """The rows of a built catalog (plain values, primary keys included) and
    its runs' model files, written back as they were into any test database.

    Rows go in through raw INSERTs of each field's own database value, so
    auto_now_add dates and JSON come back unchanged, and on Postgres the
    sequences are moved past the copied keys. A snapshot can be saved to a
    file (plain values) and loaded by another test process.
    """

    def __init__(self, files: list[Path], rows: list[list[tuple]]):
        self.files = files
        self.rows = rows  # per model of _snapshot_models(), its rows' plain values
        self._tables = None

    @classmethod
    def capture(cls, files_dir: Path) -> "CatalogSnapshot":
        # Files and folders (a run's similar-song index is a folder of files).
        files = sorted(p for p in files_dir.iterdir() if not p.name.endswith(".part"))
        rows = [
            list(model._default_manager.order_by("pk").values_list(*[f.attname for f in model._meta.concrete_fields]))
            for model in _snapshot_models()
        ]
        return cls(files, rows)

    def save(self, path: Path) -> None:
        path.write_bytes(pickle.dumps({"files": [str(p) for p in self.files], "rows": self.rows}))

    @classmethod
    def load(cls, path: Path) -> "CatalogSnapshot":
        saved = pickle.loads(path.read_bytes())
        return cls([Path(p) for p in saved["files"]], saved["rows"])

    @property
    def tables(self) -> list:
        """(model, fields, rows) with the rows as this database takes them; prepared once per process."""
        if self._tables is None:
            from django.db import connection

            from clustering.models import TrainingRun

            self._tables = []
            for model, rows in zip(_snapshot_models(), self.rows, strict=True):
                fields = model._meta.concrete_fields
                if model is not TrainingRun:  # its file paths change per test: prepared at restore
                    rows = [_db_values(fields, row, connection) for row in rows]
                self._tables.append((model, fields, rows))
        return self._tables

    def restore(self, model_dir: Path) -> None:
        from django.core.management.color import no_style
        from django.db import connection, transaction

        from clustering import artifacts
        from clustering.labels import labels_drops_held, labels_partition_create
        from clustering.models import SongLabel, TrainingRun

        model_dir.mkdir(parents=True, exist_ok=True)
        for path in self.files:
            if path.is_dir():
                shutil.copytree(path, model_dir / path.name)
            else:
                shutil.copyfile(path, model_dir / path.name)
        qn = connection.ops.quote_name
        # Under the drop lock, as an activation: a labels prune in another
        # session (a worker's run clean-up, a sweeper) deciding on the state
        # before this restore must not drop the restored runs' labels (run
        # ids repeat between tests).
        with transaction.atomic(), labels_drops_held(), connection.cursor() as cursor:
            for model, fields, rows in self.tables:
                if not rows:
                    continue
                if model is TrainingRun:
                    rows = [_db_values(fields, self._run_row(fields, row, model_dir), connection) for row in rows]
                if model is SongLabel:  # each run's labels go to its own partition (Postgres)
                    for run_id in sorted({row[0] for row in rows}):
                        labels_partition_create(run_id)
                columns = ", ".join(qn(f.column) for f in fields)
                marks = ", ".join(["%s"] * len(fields))
                cursor.executemany(f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES ({marks})", rows)
            if connection.vendor == "postgresql":
                for sql in connection.ops.sequence_reset_sql(no_style(), [m for m, _, _ in self.tables]):
                    cursor.execute(sql)
        artifacts.cache_clear()

    @staticmethod
    def _run_row(fields, row, model_dir: Path) -> list:
        """A run's row with its file paths moved to ``model_dir`` (their sha256 unchanged)."""
        row = list(row)
        for i, field in enumerate(fields):
            if field.attname in ("artifact_path", "index_path") and row[i]:
                row[i] = str(model_dir / Path(row[i]).name)
        return row


def _add_script_song(work_dir: Path) -> None:
    from songs.services import songs_import_file

    job = songs_import_file(path=write_csv(work_dir / "script-song.csv", script_song_rows()))
    assert job.status == "succeeded", job.error


def _add_twins_of_the_eighth_song(work_dir: Path) -> None:
    """Exact duplicates of the seed (same artist and title, other ids, one in other case):
    the nearest possible neighbours, which must never be returned."""
    from songs.models import Song

    seed = Song.objects.select_related("artist").order_by("id")[7]
    song_twin(seed, "dup-1")
    song_twin(seed, "dup-2", name=f"  {seed.name.upper()} ")


# fixture name: (what is added to the demo catalog, the training run's parameters or None)
DEMO_RECIPES = {
    "demo_catalog": (None, None),
    "demo_catalog_with_script_song": (_add_script_song, None),
    "trained_demo": (None, {"k": 4}),
    "trained_demo_with_script_song": (_add_script_song, {"k": 4}),
    "scanned_demo_with_script_song": (
        _add_script_song,
        {"k": "auto", "scan_k_range": (3, 6), "scan_sample_size": 1000},
    ),
    "trained_demo_with_twins": (_add_twins_of_the_eighth_song, {"k": 4}),
}


def _build_demo(name: str, work_dir: Path) -> None:
    """Import (and train) fixture ``name``'s catalog into the current database, as a test would."""
    from songs.services import songs_import_file

    add, training = DEMO_RECIPES[name]
    job = songs_import_file(path=DEMO_CSV)
    assert job.status == "succeeded", job.error
    if add is not None:
        add(work_dir)
    if training is not None:
        run = train_run(**training)
        assert run.status == "succeeded" and run.is_active and run.index_path, run.error


class DemoSnapshots:
    """Each demo fixture's catalog, built the first time a test asks for it:
    imported and trained with the real importer and pipeline inside a
    transaction that is rolled back, so the test database stays as it was.

    With pytest-xdist the test processes share what they build: the first
    process to need a catalog builds it (under a file lock) and saves it in
    the run's shared temp folder; the others load it from there.
    """

    def __init__(self, base_dir: Path, db_blocker):
        self.base_dir = base_dir
        self.db_blocker = db_blocker
        self.built: dict[str, CatalogSnapshot] = {}

    def get(self, name: str) -> CatalogSnapshot:
        if name not in self.built:
            work_dir = self.base_dir / name
            work_dir.mkdir(parents=True, exist_ok=True)
            saved = work_dir / "snapshot.pickle"
            with open(work_dir / "build.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if saved.exists():
                    self.built[name] = CatalogSnapshot.load(saved)
                else:
                    self.built[name] = self._build(name, work_dir)
                    self.built[name].save(saved)
        return self.built[name]

    def _build(self, name: str, work_dir: Path) -> CatalogSnapshot:
        from django.db import transaction
        from django.test.utils import override_settings

        from clustering import artifacts

        files_dir = work_dir / "models"
        files_dir.mkdir(parents=True)
        with self.db_blocker.unblock(), override_settings(MODEL_DIR=files_dir), transaction.atomic():
            _build_demo(name, work_dir)
            snapshot = CatalogSnapshot.capture(files_dir)
            transaction.set_rollback(True)
        artifacts.cache_clear()
        return snapshot

    def restore(self, name: str, settings, tmp_path: Path) -> None:
        """Copy fixture ``name``'s catalog into this test's database, its files under tmp_path/models."""
        settings.MODEL_DIR = tmp_path / "models"
        self.get(name).restore(settings.MODEL_DIR)


@pytest.fixture(scope="session")
def demo_snapshots(django_db_setup, django_db_blocker, tmp_path_factory, worker_id):
    # Under xdist each process has its own base temp folder inside the run's one.
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base
    return DemoSnapshots(shared / "demo-snapshots", django_db_blocker)


@pytest.fixture
def demo_catalog(db, demo_snapshots, settings, tmp_path):
    """The demo catalog (3,000 songs) as the importer stores it; no training run. Its ImportJob."""
    from songs.models import ImportJob

    demo_snapshots.restore("demo_catalog", settings, tmp_path)
    return ImportJob.objects.get()


@pytest.fixture
def demo_catalog_with_script_song(db, demo_snapshots, settings, tmp_path):
    """The demo catalog plus the song titled SCRIPT_TITLE by SCRIPT_ARTIST; no training run. That song."""
    from songs.models import Song

    demo_snapshots.restore("demo_catalog_with_script_song", settings, tmp_path)
    return Song.objects.select_related("artist").get(name=SCRIPT_TITLE)


def _active_run():
    from clustering.models import TrainingRun

    return TrainingRun.objects.get(is_active=True)


@pytest.fixture
def trained_demo(db, demo_snapshots, settings, tmp_path):
    """The demo catalog clustered with k=4: the active run, with its similar-song index."""
    demo_snapshots.restore("trained_demo", settings, tmp_path)
    return _active_run()


@pytest.fixture
def trained_demo_with_script_song(db, demo_snapshots, settings, tmp_path):
    """The demo catalog plus the script-titled song, clustered with k=4: the active run, with its index."""
    demo_snapshots.restore("trained_demo_with_script_song", settings, tmp_path)
    return _active_run()


@pytest.fixture
def scanned_demo_with_script_song(db, demo_snapshots, settings, tmp_path):
    """The demo catalog plus the script-titled song, k chosen by a scan of 3-6 (1,000-song sample): the active run."""
    demo_snapshots.restore("scanned_demo_with_script_song", settings, tmp_path)
    return _active_run()


@pytest.fixture
def trained_demo_with_twins(db, demo_snapshots, settings, tmp_path):
    """The demo catalog plus two copies (dup-1, dup-2) of its eighth song, clustered with k=4.

    {"run": the active run, "seed": the eighth song}.
    """
    from songs.models import Song

    demo_snapshots.restore("trained_demo_with_twins", settings, tmp_path)
    return {"run": _active_run(), "seed": Song.objects.select_related("artist").order_by("id")[7]}


# --- pages and API: clients, users and what their tests read back -----------------------


@pytest.fixture
def users():
    """alice and bob, plain users with the password PASSWORD."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return User.objects.create_user("alice", password=PASSWORD), User.objects.create_user("bob", password=PASSWORD)


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_client_factory():
    from rest_framework.test import APIClient

    def make(key=None, **kwargs):
        client = APIClient(**kwargs)
        if key:
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


def token_command(*args) -> tuple[str, str]:
    """Run create_api_token: the key it prints (its last line) and its notes on stderr."""
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip().splitlines()[-1], err.getvalue()


def xss_song() -> "Song":
    """The song titled SCRIPT_TITLE (with its artist; its label is read on first use)."""
    from songs.models import Song

    return Song.objects.select_related("artist").get(name=SCRIPT_TITLE)


def some_songs(n: int) -> "list[Song]":
    """The first n songs of the catalog other than the script-titled one."""
    from songs.models import Song

    return list(Song.objects.exclude(name=SCRIPT_TITLE).select_related("artist").order_by("id")[:n])


def html_of(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def page_data(html: str) -> dict:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.DOTALL)
    assert match, "page has no page-data"
    return json.loads(match.group(1))


def assert_title_escaped(html: str) -> None:
    """The script title is on the page only as text."""
    assert SCRIPT_TITLE not in html
    assert SCRIPT_TITLE_ESCAPED in html or "\\u003Cscript\\u003E" in html


def assert_title_and_artist_escaped(html: str) -> None:
    """The script title and the artist's markup are on the page only as text."""
    assert SCRIPT_TITLE not in html
    assert SCRIPT_TITLE_ESCAPED in html or "\\u003Cscript\\u003E" in html
    assert "<b>&</b>" not in html
