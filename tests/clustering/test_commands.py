"""The engine's management commands a user runs by hand: `setup_demo` (what
`make run` calls) and `similarity_quality` (the discovery yardstick)."""

import csv
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clustering.models import TrainingRun
from songs.models import Song

HEADER = [
    "track_name", "track_artist", "playlist_genre", "energy", "tempo", "danceability", "loudness", "liveness",
    "valence", "time_signature", "speechiness", "track_popularity", "instrumentalness", "mode", "key",
    "duration_ms", "acousticness", "track_album_release_date",
]  # fmt: skip


def _two_genre_export(path, n_per_genre=120, seed=3):
    """A Spotify playlist-style export of two genres far apart in sound:
    quiet acoustic "ambient" and loud danceable "edm", 16 artists each."""
    rng = np.random.default_rng(seed)
    rows = []
    for genre, energy, acoustic, dance in (("ambient", 0.15, 0.9, 0.25), ("edm", 0.9, 0.03, 0.8)):
        for i in range(n_per_genre):
            jitter = rng.normal(0, 0.04, size=3)
            rows.append(
                {
                    "track_name": f"{genre.title()} Piece {i}",
                    "track_artist": f"{genre.title()} Artist {i % 16}",
                    "playlist_genre": genre,
                    "energy": f"{np.clip(energy + jitter[0], 0, 1):.3f}",
                    "acousticness": f"{np.clip(acoustic + jitter[1], 0, 1):.3f}",
                    "danceability": f"{np.clip(dance + jitter[2], 0, 1):.3f}",
                    "tempo": f"{(80 if genre == 'ambient' else 128) + rng.normal(0, 3):.1f}",
                    "loudness": f"{(-20 if genre == 'ambient' else -5) + rng.normal(0, 1):.1f}",
                    "liveness": "0.1",
                    "valence": f"{rng.uniform(0.2, 0.8):.3f}",
                    "time_signature": "4",
                    "speechiness": "0.04",
                    "track_popularity": "50",
                    "instrumentalness": "0.5",
                    "mode": "1",
                    "key": str(i % 12),
                    "duration_ms": str(200_000 + i),
                    "track_album_release_date": "2020-01-01",
                }
            )
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.django_db
def test_similarity_quality_measures_genre_precision_against_its_yardsticks(tmp_path, capsys, settings):
    settings.MODEL_RECHECK_SECONDS = 60  # one run throughout: no recheck per query
    data = _two_genre_export(tmp_path / "export.csv", n_per_genre=80)
    out = tmp_path / "figures.json"
    call_command("similarity_quality", data=str(data), json_path=str(out))
    figures = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == figures
    assert figures["songs"] == figures["queries"] == 160
    # The two genres are far apart in sound: similar songs keep to the seed's
    # genre, random songs find it half the time.
    assert figures["genre_precision_at_10"] >= 0.95
    assert figures["other_artists_genre_precision_at_10"] >= 0.95
    assert figures["plain_knn_10_standardised_features"] >= 0.95
    assert 0.3 <= figures["random_songs"] <= 0.7
    assert figures["near_duplicates_returned"] == 0
    assert figures["seed_artist_share_default"] <= 0.2
    assert TrainingRun.objects.get(pk=figures["run"]).is_active


@pytest.mark.django_db
def test_similarity_quality_refuses_a_missing_file_and_a_catalog_in_use(tmp_path):
    with pytest.raises(CommandError, match=r"absent\.csv is not here; nothing to measure"):
        call_command("similarity_quality", data=str(tmp_path / "absent.csv"))
    data = _two_genre_export(tmp_path / "export.csv", n_per_genre=10)
    call_command("import_songs", str(data), verbosity=0)
    with pytest.raises(CommandError, match="the catalog is not empty"):
        call_command("similarity_quality", data=str(data))


@pytest.mark.django_db
def test_setup_demo_imports_and_trains_once_and_checks_k(capsys):
    with pytest.raises(CommandError, match="--k must be a whole number or auto"):
        call_command("setup_demo", k="many")
    call_command("setup_demo", k="4")
    first = capsys.readouterr().out
    assert "Imported the demo catalog: 3,000 songs" in first and "Trained run #" in first
    run = TrainingRun.objects.get(is_active=True)
    assert run.n_clusters == 4 and Song.objects.count() == 3000
    # A second start (make run again) keeps the catalog and the model.
    call_command("setup_demo", k="4")
    again = capsys.readouterr().out
    assert "demo import skipped" in again and "Trained run" not in again
    assert TrainingRun.objects.count() == 1
