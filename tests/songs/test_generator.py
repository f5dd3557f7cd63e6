"""Tests of the synthetic catalog generator (songs.generator) and its command."""

import ast
import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from songs import generator
from songs.features import FEATURE_NAMES, FEATURES
from songs.generator import ARCHETYPES, FLAGSHIP_HEADER, generate_catalog

REPO = Path(__file__).resolve().parents[2]
EXPECTED_HEADER = (
    "id_songs,name_song,popularity_songs,duration_ms,explicit,id_artists,release_date,"
    "danceability,energy,key,loudness,mode,speechiness,acousticness,instrumentalness,"
    "liveness,valence,tempo,time_signature,followers,genres,name_artists,popularity_artists"
)
BASE62_ID = re.compile(r"[0-9A-Za-z]{22}")


def _text(songs: int, seed: int) -> str:
    buf = io.StringIO(newline="")
    assert generate_catalog(songs=songs, seed=seed, out=buf) == songs
    return buf.getvalue()


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), keep_default_na=False, dtype={"release_date": str})


@pytest.fixture(scope="module")
def text5k() -> str:
    return _text(5000, 7)


@pytest.fixture(scope="module")
def df5k(text5k) -> pd.DataFrame:
    return _frame(text5k)


# --- format -----------------------------------------------------------------
def test_header_is_exactly_the_flagship_header(text5k):
    assert tuple(EXPECTED_HEADER.split(",")) == FLAGSHIP_HEADER
    assert len(FLAGSHIP_HEADER) == 23
    assert text5k.split("\n", 1)[0] == EXPECTED_HEADER


def test_feature_columns_match_the_shared_feature_list():
    assert generator.FEATURE_COLUMNS == FEATURE_NAMES
    assert set(FEATURE_NAMES) <= set(FLAGSHIP_HEADER)


def test_every_row_has_23_fields_after_csv_quoting(text5k):
    rows = list(csv.reader(io.StringIO(text5k, newline="")))
    assert len(rows) == 5001
    assert {len(r) for r in rows} == {23}
    names = [r[1] for r in rows[1:]]
    # The file exercises quoting and UTF-8, and the csv module round-trips it.
    assert any("," in n for n in names)
    assert any('"' in n for n in names)
    assert any(not n.isascii() for n in names)
    assert any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af\u0400-\u04ff]", n) for n in names)
    assert text5k.count("\r") == 0  # plain \n line ends


def test_ids_are_unique_base62(df5k):
    assert df5k.id_songs.map(lambda s: bool(BASE62_ID.fullmatch(s))).all()
    assert df5k.id_artists.map(lambda s: bool(BASE62_ID.fullmatch(s))).all()
    assert df5k.id_songs.is_unique
    assert not set(df5k.id_songs) & set(df5k.id_artists)


def test_artists_are_consistent_and_have_about_eight_songs(df5k):
    per_artist = df5k.groupby("id_artists")[["name_artists", "genres", "followers", "popularity_artists"]].nunique()
    assert (per_artist == 1).all().all()
    songs_per_artist = len(df5k) / df5k.id_artists.nunique()
    assert 6 <= songs_per_artist <= 11


def test_genres_are_python_list_literals_from_the_archetypes(df5k):
    known = {g for a in ARCHETYPES for g in a.genres}
    lists = df5k.genres.map(ast.literal_eval)
    assert lists.map(lambda v: isinstance(v, list) and all(isinstance(g, str) for g in v)).all()
    assert lists.map(len).between(0, 3).all()
    assert set().union(*lists) <= known
    empty = (lists.map(len) == 0).mean()
    assert 0.005 < empty < 0.08


def test_release_dates_are_full_dates_or_years(df5k):
    dates = df5k.release_date
    assert dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{4}").all()
    full = dates[dates.str.len() == 10]
    pd.to_datetime(full, format="%Y-%m-%d")  # raises on an impossible date
    years = dates.str[:4].astype(int)
    assert years.between(1900, 2030).all()
    year_only = (dates.str.len() == 4).mean()
    assert 0.01 < year_only < 0.25


def test_features_and_other_columns_are_in_range(df5k):
    for f in FEATURES:
        col = df5k[f.name]
        assert col.notna().all(), f.name
        assert col.le(f.high).all(), f.name
        assert (col.gt(f.low) if not f.low_inclusive else col.ge(f.low)).all(), f.name
    assert df5k.tempo.between(50, 210).all()
    assert df5k.duration_ms.between(60_000, 900_000).all()
    assert df5k.duration_ms.dtype.kind == "i"
    assert df5k.popularity_songs.between(0, 100).all()
    assert df5k.popularity_artists.between(0, 100).all()
    assert df5k.followers.ge(0).all() and df5k.followers.dtype.kind == "i"
    assert set(df5k.explicit) == {0, 1}
    assert set(df5k["mode"]) == {0, 1}
    assert set(df5k.key) <= set(range(12)) and df5k.key.nunique() == 12
    assert set(df5k.time_signature) <= {3, 4, 5} and 4 in set(df5k.time_signature)


def test_names_look_synthetic(df5k):
    assert df5k.name_song.str.len().gt(0).all()
    assert df5k.name_artists.str.len().gt(0).all()
    assert df5k.name_artists.str.contains(r"^The \w+ \w+$").any()  # "The Amber Foxes"


# --- determinism and output targets -----------------------------------------
def test_same_seed_same_bytes_and_different_seed_differs(text5k):
    assert _text(5000, 7) == text5k
    assert _text(5000, 8) != text5k


def test_path_output_equals_stream_output(tmp_path):
    out = tmp_path / "cat.csv"
    assert generate_catalog(songs=1234, seed=3, out=out) == 1234
    assert out.read_bytes() == _text(1234, 3).encode("utf-8")
    assert not list(tmp_path.glob("*.part"))
    assert generate_catalog(songs=10, seed=3, out=str(out)) == 10  # str paths too, overwrite
    assert out.read_text(encoding="utf-8").count("\n") == 11


def test_many_chunks_exact_count_and_progress(monkeypatch):
    monkeypatch.setattr(generator, "ARTISTS_PER_CHUNK", 40)
    seen = []
    buf = io.StringIO(newline="")
    assert generate_catalog(songs=3001, seed=5, out=buf, progress=seen.append) == 3001
    assert len(seen) > 5
    assert seen == sorted(seen) and seen[-1] == 3001
    df = _frame(buf.getvalue())
    assert len(df) == 3001 and df.id_songs.is_unique


def test_zero_songs_writes_only_the_header_and_bad_arguments_raise():
    assert _text(0, 1) == EXPECTED_HEADER + "\n"
    for bad in (-1, 2.5, "10", True):
        with pytest.raises(ValueError):  # noqa: PT011 -- any bad argument is a ValueError; the messages are not under test here
            generate_catalog(songs=bad, seed=1, out=io.StringIO())
    with pytest.raises(ValueError):  # noqa: PT011 -- as above
        generate_catalog(songs=10, seed=-1, out=io.StringIO())


# --- realism ----------------------------------------------------------------
def test_archetype_table():
    assert 20 <= len(ARCHETYPES) <= 25
    assert len({a.key for a in ARCHETYPES}) == len(ARCHETYPES)
    for a in ARCHETYPES:
        assert len(a.genres) >= 1 and a.weight > 0
        for name in (
            "danceability",
            "energy",
            "speechiness",
            "acousticness",
            "instrumentalness",
            "liveness",
            "valence",
        ):
            mean, conc = getattr(a, name)
            assert 0 < mean < 1 and conc > 0, (a.key, name)
        assert -60 <= a.loudness[0] <= 5 and 50 <= a.tempo[0] <= 210 and a.duration_s[0] > 0


def test_feature_correlations(df5k):
    corr = df5k[["energy", "loudness", "acousticness"]].corr()
    assert corr.loc["energy", "loudness"] > 0.5
    assert corr.loc["energy", "acousticness"] < -0.4


def _kmeans(X: np.ndarray):
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(X)
    labels = KMeans(n_clusters=8, n_init=4, random_state=0).fit_predict(Z)
    return labels, silhouette_score(Z, labels, sample_size=3000, random_state=0)


def test_catalog_has_cluster_structure(df5k):
    pytest.importorskip("sklearn")
    X = df5k[list(FEATURE_NAMES)].to_numpy(dtype=float)
    labels, real = _kmeans(X)

    shuffled = X.copy()
    rng = np.random.default_rng(0)
    for j in range(shuffled.shape[1]):  # same marginals, no joint structure
        shuffled[:, j] = rng.permutation(shuffled[:, j])
    _, noise = _kmeans(shuffled)

    assert real > noise + 0.04, (real, noise)
    assert real > 1.3 * noise, (real, noise)

    # Recognisable groups: talk, live recordings, quiet instrumental music.
    prof = df5k.assign(c=labels).groupby("c")[list(FEATURE_NAMES)].mean()
    assert (prof.speechiness > 0.6).any(), prof
    assert (prof.liveness > 0.6).any(), prof
    assert ((prof.instrumentalness > 0.6) & (prof.acousticness > 0.7) & (prof.energy < 0.3)).any(), prof


def test_spoken_word_songs_are_speechy(df5k):
    spoken = set(next(a for a in ARCHETYPES if a.key == "spoken_word").genres)
    lists = df5k.genres.map(ast.literal_eval)
    is_spoken = lists.map(lambda v: bool(v) and v[0] in spoken)
    assert is_spoken.sum() > 50
    assert df5k.speechiness[is_spoken].median() > 0.7
    assert df5k.speechiness[~is_spoken].median() < 0.15


# --- the demo fixture and the management command -----------------------------
def test_demo_fixture_is_current():
    fixture = REPO / "fixtures" / "demo_catalog.csv"
    assert fixture.read_bytes() == _text(3000, 42).encode("utf-8"), (
        "fixtures/demo_catalog.csv is stale: python manage.py generate_catalog "
        "--songs 3000 --seed 42 --out fixtures/demo_catalog.csv"
    )


@pytest.fixture
def django_ready():
    pytest.importorskip("django")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musiccluster.settings")
    import django

    django.setup()


def test_command_writes_the_same_bytes(django_ready, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "demo.csv"
    stdout = io.StringIO()
    call_command("generate_catalog", songs=321, seed=9, out=str(out), stdout=stdout)
    assert out.read_bytes() == _text(321, 9).encode("utf-8")
    assert "321" in stdout.getvalue() and str(out) in stdout.getvalue()


def test_command_can_write_to_stdout(django_ready):
    from django.core.management import call_command

    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("generate_catalog", "--songs", "25", "--seed", "4", "--out", "-", stdout=stdout, stderr=stderr)
    assert stdout.getvalue() == _text(25, 4)
    assert "25" in stderr.getvalue()


@pytest.mark.parametrize("songs", [0, -5, 50_000_001])
def test_command_rejects_bad_song_counts(django_ready, tmp_path, songs):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--songs"):
        call_command("generate_catalog", songs=songs, out=str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


def test_command_rejects_missing_directory(django_ready, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="does not exist"):
        call_command("generate_catalog", out=str(tmp_path / "nope" / "x.csv"))
