"""Songs imported after the active run trained are similar-song results at
once (the delta beside the index), within the same filters."""

import pytest

from clustering import delta, selectors
from clustering.artifacts import active_index
from songs.models import Song
from tests.conftest import song_twin

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(trained_demo):
    """A song imported after the run trained: the sound of a trained song,
    by its artist, under another title (so the same vector: the nearest)."""
    seed = Song.objects.order_by("id")[40]
    song = song_twin(seed, "new-song", name="A New Song", genres=["newgenre"])
    delta.cache_clear()
    return seed, song


def _similar(api, seed, **params):
    response = api.get(f"/api/songs/{seed.external_id}/similar/", {"limit": 10, **params})
    assert response.status_code == 200, response.content
    return [r["song"]["id"] for r in response.json()["results"]], response.json()["results"]


def test_a_song_imported_after_training_is_a_similar_song_at_once(api, newcomer, trained_demo):
    seed, song = newcomer
    _, index = active_index()
    assert index.rows_of([song.pk]).tolist() == [-1]  # not in the index
    ids, results = _similar(api, seed)
    assert ids[0] == "new-song"  # the same sound: the nearest of all
    assert results[0]["distance"] < 0.01 and results[0]["explanation"]["text"]
    # And from its own page: a seed outside the index finds trained songs, never itself.
    ids, _ = _similar(api, song)
    assert len(ids) == 10 and "new-song" not in ids and seed.external_id in ids


def test_the_delta_obeys_the_filters(api, newcomer, trained_demo):
    seed, song = newcomer
    assert "new-song" not in _similar(api, seed, exclude_songs="new-song")[0]
    assert "new-song" not in _similar(api, seed, exclude_artists=seed.artist.external_id)[0]
    assert "new-song" not in _similar(api, seed, exclude_genres="newgenre")[0]
    low = song.energy - 0.01
    assert "new-song" not in _similar(api, seed, max_energy=low)[0]
    assert "new-song" in _similar(api, seed, min_energy=low)[0]
    # Same cluster: the delta is labelled by the run's model.
    assert "new-song" in _similar(api, seed, same_cluster="true")[0]


def test_the_delta_follows_the_catalog_and_a_retrain_folds_it_in(api, newcomer, trained_demo):
    seed, song = newcomer
    assert "new-song" in _similar(api, seed)[0]
    Song.objects.filter(pk=song.pk).delete()
    assert "new-song" not in _similar(api, seed)[0]  # the count moved: rebuilt
    run = selectors.active_run()
    _, index = active_index()
    assert len(delta.delta_for(run, index)) == 0
