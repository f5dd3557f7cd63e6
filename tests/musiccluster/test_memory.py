"""Memory of a large request is handed back once it is answered
(musiccluster/memory.py): a collection and malloc_trim in the background
after a large body or response, nothing after an ordinary request."""

import subprocess
import sys
import textwrap
import threading

import pytest
from rest_framework.test import APIClient

from musiccluster import memory

VECTOR = {"danceability": 0.8, "energy": 0.9, "loudness": -5.0, "speechiness": 0.05, "acousticness": 0.05,
          "instrumentalness": 0.0, "liveness": 0.1, "valence": 0.8, "tempo": 124.0, "duration_ms": 210000}  # fmt: skip


@pytest.fixture
def releases(monkeypatch):
    """Each release the middleware starts, as an event set by the background thread."""
    done = []

    def record():
        event = threading.Event()
        done.append(event)
        event.set()
        return True

    monkeypatch.setattr(memory, "release_memory", record)
    monkeypatch.setattr(memory, "RELEASE_DELAY_SECONDS", 0.0)
    return done


def _wait_thread():
    for thread in threading.enumerate():
        if thread.name == "release-memory":
            thread.join(5)


def test_a_large_request_body_is_followed_by_one_release_and_a_small_one_by_none(settings, releases):
    settings.LARGE_REQUEST_BYTES = 2_000
    api = APIClient()
    small = api.get("/healthz?quick=1")
    assert small.status_code == 200
    _wait_thread()
    assert releases == []
    # A 400 answer still read the large body: its memory is released too.
    big = api.post("/api/predict/", [{"danceability": "x"}] * 100, format="json")
    assert big.status_code == 400 and len(big.content) < 2_000
    _wait_thread()
    assert len(releases) == 1 and releases[0].is_set()


def test_a_large_response_is_followed_by_a_release(settings, releases):
    settings.LARGE_REQUEST_BYTES = 2_000
    response = APIClient().get("/api/schema/")  # the OpenAPI document: tens of kB, from a small request
    assert response.status_code == 200 and len(response.content) >= 2_000
    _wait_thread()
    assert len(releases) == 1


def test_releases_are_off_with_a_zero_threshold(settings, releases):
    settings.LARGE_REQUEST_BYTES = 0
    assert APIClient().get("/api/schema/").status_code == 200
    _wait_thread()
    assert releases == []


def test_releases_asked_while_one_is_due_share_it(monkeypatch):
    started = threading.Event()
    go = threading.Event()
    calls = []

    def slow_release():
        calls.append(1)
        return True

    def wait(_seconds):
        started.set()
        go.wait(5)

    monkeypatch.setattr(memory, "release_memory", slow_release)
    monkeypatch.setattr(memory.time, "sleep", wait)
    assert memory.schedule_release() is True
    assert started.wait(5)
    assert memory.schedule_release() is False  # one is due: no second thread
    go.set()
    _wait_thread()
    assert calls == [1]
    assert memory.schedule_release() is True  # the last one has run: a new one may start
    _wait_thread()
    assert calls == [1, 1]


def test_release_memory_gives_the_heap_s_free_pages_back_to_the_system():
    """In a fresh interpreter: 200 MB of 2-kB strings (malloc's heap, not
    Python's small-object arenas), one in fifty kept so that the heap cannot
    shrink from its top, the rest freed. The process keeps the freed pages
    until release_memory()."""
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from musiccluster.memory import release_memory

        def anonymous_mb():
            for line in open("/proc/self/smaps_rollup"):
                if line.startswith("Anonymous:"):
                    return int(line.split()[1]) / 1024

        blocks = [bytes(2000) + i.to_bytes(4, "little") for i in range(100_000)]
        kept = blocks[::50]
        full = anonymous_mb()
        del blocks
        freed = anonymous_mb()
        released = release_memory()
        print(full, freed, anonymous_mb(), released)
        """
    )
    root = str(memory.__file__).rsplit("/musiccluster/", 1)[0]
    out = subprocess.run([sys.executable, "-c", script, root], capture_output=True, text=True, check=True).stdout
    full, freed, after, released = out.split()
    full, freed, after = float(full), float(freed), float(after)
    assert freed > full * 0.8, (full, freed)  # free() alone keeps the pages
    assert after < freed - 150, (full, freed, after)  # ~196 of the 200 MB go back
    assert released == "True"
