"""Nearest-song predictions run a few at a time per host: one that finds
every slot taken is refused at once (429), so that they cannot keep every
web worker busy; predictions without neighbours are not limited."""

import json
import threading

import pytest
from rest_framework.test import APIClient

from clustering.limits import expensive_slot

VECTOR = {
    "danceability": 0.6, "energy": 0.7, "loudness": -6.0, "speechiness": 0.05, "acousticness": 0.2,
    "instrumentalness": 0.0, "liveness": 0.1, "valence": 0.5, "tempo": 120.0, "duration_ms": 200000,
}  # fmt: skip


@pytest.fixture
def slots(settings, tmp_path):
    settings.EXPENSIVE_SLOT_DIR = tmp_path / "slots"
    settings.API_EXPENSIVE_CONCURRENCY = 1
    return settings


def post(client, nearest: int):
    return client.post(f"/api/predict/?nearest={nearest}", json.dumps([VECTOR] * 3), content_type="application/json")


def test_a_nearest_prediction_finding_every_slot_taken_is_refused_at_once(trained_demo, slots):
    client = APIClient()
    with expensive_slot("predict-nearest") as got:  # another request holds the one slot
        assert got
        refused = post(client, 5)
        assert refused.status_code == 429, refused.content
        assert refused["Retry-After"] == "1"
        assert "Too many nearest-song predictions" in refused.json()["detail"]
        assert post(client, 0).status_code == 200  # without neighbours: not limited
    served = post(client, 5)
    assert served.status_code == 200, served.content
    assert len(served.json()["results"][0]["nearest"]) == 5


def test_slots_are_counted_across_threads_and_released(slots):
    slots.API_EXPENSIVE_CONCURRENCY = 2
    held, release, results = threading.Barrier(3), threading.Event(), []

    def hold():
        with expensive_slot("x") as got:
            results.append(got)
            held.wait()
            release.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    held.wait()
    with expensive_slot("x") as third:
        assert third is False
    release.set()
    for t in threads:
        t.join()
    assert results == [True, True]
    with expensive_slot("x") as again:
        assert again is True


def test_no_limit_when_the_setting_is_zero(slots):
    slots.API_EXPENSIVE_CONCURRENCY = 0
    with expensive_slot("x") as a, expensive_slot("x") as b:
        assert a and b
