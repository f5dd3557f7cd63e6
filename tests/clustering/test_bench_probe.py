"""The bench's reader beside write phases (issue #10): what it requests and reports."""

import time

import pytest
from django.db import connection

from clustering.management.commands.bench import _ReadProbe
from songs.services import songs_import_file
from tests.conftest import flagship_rows


def _until(probe: _ReadProbe, requests: int) -> None:
    deadline = time.monotonic() + 60
    while probe.done < requests and time.monotonic() < deadline:
        time.sleep(0.02)


# The probe reads through connections of its own threads: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_probe_reads_the_file_head_and_reports_each_kind(catalog_csv, monkeypatch):
    path = catalog_csv(flagship_rows(12, name_song="Harbor Lights"))
    probe = _ReadProbe.from_csv(path)
    assert probe.ids[:2] == ["SONG000000000000000001", "SONG000000000000000002"]
    assert set(probe.words) == {"Harbor", "Lights"}
    monkeypatch.setattr(_ReadProbe, "PAUSE", 0.01)

    with probe.during("before"):  # nothing imported yet: the song reads answer 404
        _until(probe, 8)
    before = probe.results["before"]
    assert before["requests"] >= 8 and before["server_errors"] == 0
    assert set(before["by_kind"]) == {"song page", "search", "api song", "similar songs"}
    assert before["by_kind"]["song page"]["statuses"] == {"404": before["by_kind"]["song page"]["requests"]}
    assert before["by_kind"]["similar songs"]["statuses"].keys() == {"503"}  # no active run yet
    assert before["longest_ms"] >= before["p50_ms"] > 0

    assert songs_import_file(path=path).status == "succeeded"
    with probe.during("after"):
        _until(probe, 8)
    after = probe.results["after"]
    assert after["by_kind"]["api song"]["statuses"] == {"200": after["by_kind"]["api song"]["requests"]}
    assert after["by_kind"]["search"]["statuses"] == {"200": after["by_kind"]["search"]["requests"]}
    if connection.vendor == "postgresql":
        assert after["longest_select_lock_wait_ms"] == 0.0  # nothing was writing


def test_bench_baseline_reads_as_the_run_reads(catalog_csv):
    """The bench's bare baseline reads the matrix with the run's own reader
    (one COPY, no Python tuple per song); it holds what the selector reads,
    row for row."""
    import numpy as np

    from clustering.catalog_read import catalog_columns
    from clustering.selectors import song_feature_matrix

    assert songs_import_file(path=catalog_csv(flagship_rows(25))).status == "succeeded"
    X = catalog_columns().X
    assert X.shape == (25, 10) and X.dtype == np.float64
    np.testing.assert_array_equal(X, song_feature_matrix()[1])


def test_page_cache_only_one_process_maps_is_told_apart_from_its_own_memory(tmp_path):
    """The serve phase's worker memory: pages of a memory-mapped file that
    only this process has read (clean), or that were written and not yet
    flushed (dirty, in a shared mapping), are the page cache's; the
    process's own heap and its private copies are not.

    Counted in a forked child: every page it inherits is shared with this
    process, so another process mapping the same libraries meanwhile (a
    parallel test worker) cannot turn its private pages shared mid-count."""
    import json
    import os

    import numpy as np

    from clustering.management.commands.bench import _file_private_kb

    path = tmp_path / "index.bin"
    np.full(40 * 2**20, 7, dtype=np.uint8).tofile(path)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read)
            before = _file_private_kb(os.getpid())
            mapped = np.memmap(path, mode="r")
            pages = int(mapped[::4096].sum()) == 7 * (len(mapped) // 4096)  # every page read once
            heap = np.ones(30 * 2**20, dtype=np.uint8)  # 30 MB of its own: not page cache
            copy = np.memmap(path, mode="c")  # a private mapping: a written page is this process's copy
            copy[::4096] = 1
            grown = (_file_private_kb(os.getpid()) - before) / 1024
            os.write(write, json.dumps({"pages": pages, "grown": grown, "heap": int(heap[-1])}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        found = json.loads(pipe.read() or "{}")
    os.waitpid(child, 0)
    assert found.get("pages") is True, found
    assert 38 <= found["grown"] <= 42, found


@pytest.mark.django_db
def test_the_figures_carry_the_database_servers_settings():
    """Figures taken on a tuned server are told apart from the default's:
    the bench records the settings that move them, as the server reports
    them (SHOW); SQLite has none."""
    from clustering.management.commands.bench import SERVER_SETTINGS, _server_settings

    found = _server_settings()
    if connection.vendor != "postgresql":
        assert found == {}
        return
    assert set(found) == {"server_version", *SERVER_SETTINGS}
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('shared_buffers'), current_setting('max_wal_size')")
        assert (found["shared_buffers"], found["max_wal_size"]) == cursor.fetchone()
        cursor.execute("SET work_mem = '7MB'")  # a session's own value is what its figures ran with
    assert _server_settings()["work_mem"] == "7MB"


@pytest.mark.parametrize("behind", [True, False])
def test_the_switch_window_times_answers_until_the_new_run_serves(
    live_server, demo_catalog, settings, monkeypatch, behind
):
    """The serve phase's run switch: answers from the activation on, until
    every one carries the new run's clusters; whether the new index loads
    behind the requests or in the first one, no answer fails."""
    import random

    from rest_framework.throttling import SimpleRateThrottle

    from clustering import services
    from clustering.management.commands.bench import _Http, _switch_window
    from clustering.models import TrainingRun
    from songs.models import Song
    from tests.conftest import _require, train_run

    if connection.vendor != "postgresql":
        # The in-memory SQLite test database shares one cache between
        # connections: the server threads' reads of the runs' table fail
        # ("table is locked") while the activation writes it.
        _require("the run switch is timed against a server on Postgres")
    first = train_run(k=3, random_state=0)
    second = train_run(k=6, random_state=1)
    services.training_run_activate(run=first)
    settings.INDEX_LOAD_IN_BACKGROUND = behind
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "anon": "100000/minute"}
    )
    ids = list(Song.objects.order_by("id").values_list("external_id", flat=True)[:300])
    rng = random.Random(0)

    def similar():
        return "GET", f"/api/songs/{rng.choice(ids)}/similar/?limit=10", b""

    client = _Http(int(live_server.url.rsplit(":", 1)[1]))
    client.check(*similar())  # the first run's index is served
    for old, new in ((first, second), (second, first)):
        out = _switch_window(client, similar, clients=2, old=old, new=new, timeout=30)
        assert TrainingRun.objects.get(is_active=True) == new
        assert out["requests"] > 0 and out["longest_ms"] >= out["p50_ms"] > 0
        assert 0 <= out["new_run_after_seconds"] < 30
        assert 0 < out["activate_seconds"] < 30
