"""A newly active run's similar-song index loads behind the one a process
serves (INDEX_LOAD_IN_BACKGROUND): no request waits for its files' sha256
(~1.9 s at 10M songs); answers carry the labels of the run whose index
they searched; a failed load is the next request's error, as without it.

The rest of the suite turns the setting off (tests/conftest.py): it
activates runs and reads at once."""

import threading
import time
from pathlib import Path

import pytest

from clustering import artifacts, services, similarity
from clustering.errors import ArtifactError
from clustering.models import Cluster
from songs.models import Song
from songs.services import songs_import_file
from tests.conftest import flagship_rows, train_run, write_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_runs(demo_catalog, settings):
    """Two trained runs of the demo catalog, the first active and its index
    served by this process; index loads behind requests on."""
    first = train_run(k=3, random_state=0)
    second = train_run(k=6, random_state=1)
    services.training_run_activate(run=first)
    settings.INDEX_LOAD_IN_BACKGROUND = True
    run, served = artifacts.active_index()  # nothing served yet: loaded in the open
    assert run.pk == first.pk
    return first, second, served


@pytest.fixture
def gate(monkeypatch):
    """Index loads in other threads wait for ``gate.set()``; ``gate.opened``
    lists the runs whose index was opened, in any thread."""
    gate = threading.Event()
    gate.opened = []
    real = artifacts._index_open

    def held_open(run):
        gate.opened.append((run.pk, threading.current_thread() is threading.main_thread()))
        if threading.current_thread() is not threading.main_thread():
            assert gate.wait(60)
        return real(run)

    monkeypatch.setattr(artifacts, "_index_open", held_open)
    yield gate
    gate.set()


def _loaders_finish(run_pk: int) -> None:
    for thread in threading.enumerate():
        if thread.name == f"index-load-run-{run_pk}":
            thread.join(60)
            assert not thread.is_alive()


def _clusters_of(body) -> set[int]:
    return {r["song"]["cluster"]["id"] for r in body["results"]}


def test_a_new_runs_index_loads_behind_the_one_served(two_runs, gate, api):
    first, second, served = two_runs
    seed = Song.objects.order_by("id").first().external_id
    services.training_run_activate(run=second)
    for _ in range(3):
        run, index = artifacts.active_index()
        assert run.pk == first.pk and index is served
    assert gate.opened == [(second.pk, False)]  # one load, in a thread
    # Meanwhile the API answers from the first run's index, with its clusters.
    body = api.get(f"/api/songs/{seed}/similar/", {"limit": 10}).json()
    assert len(body["results"]) == 10
    assert _clusters_of(body) <= set(first.clusters.values_list("id", flat=True))

    gate.set()
    _loaders_finish(second.pk)
    run, index = artifacts.active_index()
    assert run.pk == second.pk and index is not served
    assert gate.opened == [(second.pk, False)]
    body = api.get(f"/api/songs/{seed}/similar/", {"limit": 10}).json()
    assert _clusters_of(body) <= set(second.clusters.values_list("id", flat=True))


def test_a_seed_imported_since_keeps_the_served_runs_cluster(two_runs, gate, api, tmp_path):
    """A seed the index does not hold (imported after both runs trained)
    takes its cluster from the run whose index is searched: "same cluster"
    is that run's cluster, not the newly active run's."""
    first, second, _served = two_runs
    rows = flagship_rows(1, start=7001)
    assert songs_import_file(path=write_csv(tmp_path / "late.csv", rows)).rows_created == 1
    seed = rows[0]["id_songs"]
    own = api.get(f"/api/songs/{seed}/").json()["cluster"]["id"]
    assert Cluster.objects.get(pk=own).run_id == first.pk
    services.training_run_activate(run=second)  # labels the late song in the second run too
    assert artifacts.active_index()[0].pk == first.pk
    body = api.get(f"/api/songs/{seed}/similar/", {"limit": 10, "same_cluster": "true"}).json()
    assert body["seed"]["cluster"]["id"] == own and body["run"] == first.pk
    assert len(body["results"]) == 10 and _clusters_of(body) == {own}


def test_without_the_setting_the_request_loads_the_new_index(two_runs, gate, settings):
    _first, second, served = two_runs
    settings.INDEX_LOAD_IN_BACKGROUND = False
    services.training_run_activate(run=second)
    run, index = artifacts.active_index()
    assert run.pk == second.pk and index is not served
    assert gate.opened == [(second.pk, True)]


def test_a_cluster_playlist_of_the_new_run_waits_for_its_index(two_runs, gate):
    first, second, served = two_runs
    services.training_run_activate(run=second)
    assert artifacts.active_index()[0].pk == first.pk  # the load behind has started
    cluster = Cluster.objects.filter(run=second).order_by("label").first()
    songs = similarity.cluster_playlist(cluster=cluster, limit=10)
    assert len(songs) == 10
    assert {s["cluster"]["id"] for s in songs} == {cluster.pk}
    assert (second.pk, True) in gate.opened  # loaded in the open for it
    run, index = artifacts.active_index()
    assert run.pk == second.pk and index is not served
    gate.set()
    _loaders_finish(second.pk)
    assert artifacts.active_index()[1] is index  # the load behind, finished later, is not installed


def test_a_failed_load_behind_is_the_next_requests_error_until_mended(two_runs, gate):
    first, second, served = two_runs
    victim = Path(second.index_path) / "vectors.npy"
    original = victim.read_bytes()
    with open(victim, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff\xfe")
    services.training_run_activate(run=second)
    assert artifacts.active_index()[0].pk == first.pk
    gate.set()
    _loaders_finish(second.pk)
    for _ in range(2):  # every request says it, as when the load is in the open
        with pytest.raises(ArtifactError, match="altered"):
            artifacts.active_index()
    victim.write_bytes(original)
    run, index = artifacts.active_index()
    assert run.pk == second.pk and index is not served


def test_a_cache_clear_drops_a_load_under_way(two_runs, gate):
    first, second, _served = two_runs
    services.training_run_activate(run=second)
    assert artifacts.active_index()[0].pk == first.pk
    artifacts.cache_clear()
    gate.set()
    _loaders_finish(second.pk)
    time.sleep(0.05)
    assert artifacts._indexes == {}
