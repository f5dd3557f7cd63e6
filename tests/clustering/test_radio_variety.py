"""The radio's variety knob: seeded, reproducible, reaching further as it grows."""

import numpy as np
import pytest

from clustering.ml.variety import SEED_MAX, pool_size, varied_pick
from songs.models import Song
from tests.conftest import html_of, page_data

# --- the pure draw (clustering.ml.variety) -----------------------------------------------------


def test_variety_zero_is_the_nearest_in_order():
    assert varied_pick(50, 10, variety=0.0, seed=7).tolist() == list(range(10))
    assert pool_size(24, 0.0) == 24 and pool_size(24, 1.0) == 24 * 4


def test_the_draw_is_reproducible_and_depends_on_the_seed():
    a = varied_pick(96, 24, variety=0.6, seed=123)
    assert a.tolist() == varied_pick(96, 24, variety=0.6, seed=123).tolist()
    assert len(set(a.tolist())) == 24 and a.tolist() == sorted(a.tolist()) and a.max() < 96
    others = {tuple(varied_pick(96, 24, variety=0.6, seed=s).tolist()) for s in range(20)}
    assert len(others) > 15


def test_more_variety_reaches_further_down_the_ranking():
    def mean_rank(variety):
        n = pool_size(24, variety)
        return np.mean([varied_pick(n, 24, variety=variety, seed=s).mean() for s in range(50)])

    low, mid, high = mean_rank(0.1), mean_rank(0.5), mean_rank(1.0)
    assert mean_rank(0.0) == pytest.approx(11.5)
    assert 11.5 < low < mid < high


def test_bad_variety_or_seed_is_refused():
    with pytest.raises(ValueError, match="variety"):
        varied_pick(10, 5, variety=1.5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        varied_pick(10, 5, variety=0.5, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        varied_pick(10, 5, variety=0.5, seed=SEED_MAX + 1)


# --- the API and the page --------------------------------------------------------------------

db = pytest.mark.django_db


def _radio(api, song, **params):
    response = api.get(f"/api/songs/{song.external_id}/radio/", {"limit": 20, **params})
    assert response.status_code == 200, response.content
    return response.json()


def _seed_song() -> Song:
    return Song.objects.select_related("artist").order_by("id")[7]


@db
def test_radio_variety_is_seeded_and_reproducible(api, trained_demo):
    song = _seed_song()
    plain = _radio(api, song)
    assert plain["variety"] == 0 and plain["seed"] is None
    assert _radio(api, song, variety=0) == plain
    one = _radio(api, song, variety=0.7, seed=42)
    assert one["seed"] == 42 and one["variety"] == 0.7
    assert _radio(api, song, variety=0.7, seed=42) == one  # same seed, variety and song: same radio
    ids = [s["id"] for s in one["songs"]]
    assert ids[0] == song.external_id and len(ids) == 20 and len(set(ids)) == 20
    assert ids != [s["id"] for s in plain["songs"]]  # it reaches past the nearest
    other_seeds = {tuple(s["id"] for s in _radio(api, song, variety=0.7, seed=s)["songs"]) for s in range(1, 6)}
    assert len(other_seeds | {tuple(ids)}) > 1
    # Still one song per artist other than the seed's.
    artists = [s["artist_id"] for s in one["songs"][1:] if s["artist_id"] != song.artist.external_id]
    assert len(artists) == len(set(artists))
    # Without a seed one is drawn, returned, and gives the same radio when sent back.
    drawn = _radio(api, song, variety=0.5)
    assert isinstance(drawn["seed"], int) and 0 <= drawn["seed"] <= SEED_MAX
    assert _radio(api, song, variety=0.5, seed=drawn["seed"])["songs"] == drawn["songs"]


@db
def test_radio_variety_errors_name_the_parameter(api, trained_demo):
    song = _seed_song()
    for params, field in (({"variety": 2}, "variety"), ({"variety": "lots"}, "variety"), ({"seed": -3}, "seed")):
        r = api.get(f"/api/songs/{song.external_id}/radio/", params)
        assert r.status_code == 400 and field in r.json()["errors"], r.content


@db
def test_radio_page_passes_variety_and_a_seed(client, trained_demo):
    song = _seed_song()
    data = page_data(html_of(client.get(f"/playlists/radio/{song.external_id}/", {"variety": "0.5", "seed": "9"})))
    assert data["url"].endswith("?limit=25&variety=0.5&seed=9")
    html = html_of(client.get(f"/playlists/radio/{song.external_id}/", {"variety": "0.4"}))
    data = page_data(html)
    seed = int(data["url"].rsplit("seed=", 1)[1])
    assert f'name="seed" type="number" min="0" step="1" value="{seed}"' in html
    assert page_data(html_of(client.get(f"/playlists/radio/{song.external_id}/")))["url"].endswith("?limit=25")
    assert (
        "variety"
        not in page_data(html_of(client.get(f"/playlists/radio/{song.external_id}/", {"variety": "x"})))["url"]
    )
