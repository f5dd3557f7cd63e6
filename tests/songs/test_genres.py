"""Genres as lists of single genres: parsing, import, the data migration of
stored lists, genre lookups, and the genre listings of both API surfaces."""

import importlib
import json
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from rest_framework.test import APIClient

from songs import selectors
from songs.importing import parse_genres
from songs.models import Artist, Song
from songs.services import songs_import_file
from tests.conftest import flagship_rows, train_run

SPOTIFY_HEADER = [
    "track_name",
    "track_artist",
    "genre",
    "danceability",
    "energy",
    "loudness",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "duration_ms",
]


@pytest.mark.parametrize(
    "cell,genres",
    [
        ("hip hop, pop, R&B", ["hip hop", "pop", "r&b"]),
        ("rock, metal", ["rock", "metal"]),
        ("['pop', 'dance pop']", ["pop", "dance pop"]),
        ('["Pop", "Dance Pop"]', ["pop", "dance pop"]),
        ("{'rock', 'blues'}", ["blues", "rock"]),
        ("drum and bass; lo-fi | Hip Hop", ["drum and bass", "lo-fi", "hip hop"]),
        ("rock / metal", ["rock", "metal"]),
        ("Dance/Electronic", ["dance/electronic"]),
        ("  Pop ,pop,  POP ", ["pop"]),
        ("['hip hop, pop']", ["hip hop", "pop"]),
        ("['vintage chanson']", ["vintage chanson"]),
        ("set()", []),
        ("[]", []),
        ("nan", []),
        ("None", []),
        ("", []),
        ("   ", []),
        ("pop, set(), nan", ["pop"]),
        ("['broken', 'list'", ["broken", "list"]),
    ],
)
def test_genre_cells_become_single_genres(cell, genres):
    assert parse_genres(cell) == genres


def _spotify_rows():
    base = {
        "danceability": "0.5",
        "energy": "0.6",
        "loudness": "-6",
        "speechiness": "0.05",
        "acousticness": "0.1",
        "instrumentalness": "0",
        "liveness": "0.1",
        "valence": "0.5",
        "tempo": "120",
        "duration_ms": "200000",
    }
    return [
        dict(base, track_name="In the End", track_artist="Linkin Park", genre="rock, metal"),
        dict(base, track_name="Grenade", track_artist="Bruno Mars", genre="pop"),
        dict(base, track_name="Deuces", track_artist="Chris Brown", genre="hip hop, pop, R&B"),
        dict(base, track_name="Nothing", track_artist="Nobody", genre="set()"),
    ]


@pytest.mark.django_db
def test_import_stores_several_genres_as_separate_genres(catalog_csv):
    job = songs_import_file(path=catalog_csv(_spotify_rows(), header=SPOTIFY_HEADER))
    assert job.status == "succeeded", job.error
    stored = dict(Song.objects.values_list("name", "genres"))
    assert stored == {
        "In the End": ["rock", "metal"],
        "Grenade": ["pop"],
        "Deuces": ["hip hop", "pop", "r&b"],
        "Nothing": [],
    }
    assert sorted(Song.objects.get(pk=pk).name for pk in selectors.song_ids_with_genres(genres=["Metal"])) == [
        "In the End"
    ]
    assert {Song.objects.get(pk=pk).name for pk in selectors.song_ids_with_genres(genres=["pop", "rock"])} == {
        "In the End",
        "Grenade",
        "Deuces",
    }
    assert selectors.song_ids_with_genres(genres=["set()"]) == []
    assert selectors.genre_counts() == {"pop": 2, "hip hop": 1, "metal": 1, "r&b": 1, "rock": 1}


def _migration():
    return importlib.import_module("songs.migrations.0005_genre_lists")


def _run_migration():
    # The data step needs only the connection (and execute, for the Postgres index).
    def execute(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)

    if connection.vendor == "postgresql":
        # The test's transaction holds deferred FK checks of the imported rows,
        # which a CREATE INDEX (even IF NOT EXISTS) refuses to run beside.
        execute("SET CONSTRAINTS ALL IMMEDIATE")
    _migration().forwards(apps, SimpleNamespace(connection=connection, execute=execute))


@pytest.mark.django_db
def test_data_migration_resplits_stored_genres_and_a_reimport_then_changes_nothing(catalog_csv):
    rows = flagship_rows(6)
    for i, row in enumerate(rows):
        row["genres"] = ["['rock, metal']", "['hip hop, pop, R&B']", "set()", "['pop']", "[]", "['Dance Pop', 'pop']"][
            i
        ]
    path = catalog_csv(rows)
    assert songs_import_file(path=path).status == "succeeded"
    # What the importer stored before genre cells were split.
    old = ['["rock, metal"]', '["hip hop, pop, R&B"]', '["set()"]', '["pop"]', "[]", '["Dance Pop", "pop"]']
    for row, stored in zip(rows, old):
        Song.objects.filter(external_id=row["id_songs"]).update(genres=json.loads(stored))
    Artist.objects.filter(external_id=rows[0]["id_artists"]).update(genres=["rock, metal"])

    _run_migration()

    stored = dict(Song.objects.values_list("external_id", "genres"))
    assert [stored[row["id_songs"]] for row in rows] == [
        ["rock", "metal"],
        ["hip hop", "pop", "r&b"],
        [],
        ["pop"],
        [],
        ["dance pop", "pop"],
    ]
    assert Artist.objects.get(external_id=rows[0]["id_artists"]).genres == ["rock", "metal"]
    assert {Song.objects.get(pk=pk).external_id for pk in selectors.song_ids_with_genres(genres=["metal"])} == {
        rows[0]["id_songs"]
    }
    # Re-importing the same file finds nothing to change: the migrated lists are what the importer now stores.
    again = songs_import_file(path=path)
    assert again.status == "succeeded"
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, 6)


@pytest.mark.django_db
def test_postgres_keeps_a_gin_index_on_song_genres():
    if connection.vendor != "postgresql":
        pytest.skip("the GIN index on genres is Postgres-only (SQLite scans its small catalogs)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'song_genres_gin'")
        (definition,) = cursor.fetchone()
        assert "gin" in definition and "jsonb_path_ops" in definition
        cursor.execute("EXPLAIN SELECT id FROM songs_song s WHERE s.genres @> %s::jsonb", [json.dumps(["metal"])])
        plan = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT id FROM songs_song s WHERE s.genres @> %s::jsonb", [json.dumps(["metal"])])
        forced = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    # The planner may scan a tiny table, but the index serves the lookup.
    assert "song_genres_gin" in plan or "song_genres_gin" in forced


@pytest.mark.django_db
def test_genre_listings_show_single_genres(catalog_csv):
    rows = flagship_rows(40)
    cells = ["['rock, metal']", "hip hop, pop, R&B", "set()", "['pop']"]
    for i, row in enumerate(rows):
        row["genres"] = cells[i % 4]
        row["id_artists"] = f"ART{i % 4:019d}"
        row["name_artists"] = f"Artist {i % 4}"
    assert songs_import_file(path=catalog_csv(rows)).status == "succeeded"
    train_run(k=2)
    genres = APIClient().get("/api/recommendations/genres/").json()["genres"]
    assert genres == {"hip hop": 10, "metal": 10, "pop": 20, "r&b": 10, "rock": 10}
    seeds = APIClient().get("/spotify/v1/recommendations/available-genre-seeds").json()["genres"]
    assert seeds == sorted(genres)
