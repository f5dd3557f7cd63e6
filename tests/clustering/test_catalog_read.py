"""The run's one read of the catalog (clustering.catalog_read): every column,
row for row, as the catalog stores it."""

import numpy as np
import pytest
from django.db import connection

from clustering import selectors
from clustering.catalog_read import catalog_columns, feature_matrix_binary, genre_pairs
from songs.features import FEATURE_NAMES
from songs.models import Song
from tests.conftest import _require

pytestmark = pytest.mark.django_db

OPTIONAL = ("release_year", "popularity", "key", "mode", "time_signature")


def _stored():
    return list(
        Song.objects.order_by("id").values_list(
            "id", *FEATURE_NAMES, "artist_id", *OPTIONAL, "external_id", "name", "genres"
        )
    )


def _expected_genres(rows):
    pairs_rows, pairs_names = [], []
    for i, row in enumerate(rows):
        for genre in row[-1] or []:
            pairs_rows.append(i)
            pairs_names.append(str(genre).strip().lower())
    return pairs_rows, pairs_names


def _assert_matches_the_catalog(columns):
    rows = _stored()
    n = len(rows)
    assert len(columns) == n
    np.testing.assert_array_equal(columns.ids, [r[0] for r in rows])
    assert columns.X.dtype == np.float64 and columns.X.shape == (n, len(FEATURE_NAMES))
    # Exactly the stored doubles, not their rounding.
    np.testing.assert_array_equal(columns.X, np.array([r[1:11] for r in rows], dtype=np.float64))
    np.testing.assert_array_equal(columns.artist_id, [r[11] for r in rows])
    for j, name in enumerate(OPTIONAL):
        expected = np.array([np.nan if r[12 + j] is None else r[12 + j] for r in rows], dtype=np.float64)
        np.testing.assert_array_equal(getattr(columns, name), expected)
    assert columns.external_id.to_pylist() == [r[17] for r in rows]
    assert columns.name.to_pylist() == [r[18] for r in rows]
    expected_rows, expected_names = _expected_genres(rows)
    np.testing.assert_array_equal(columns.genre_rows, expected_rows)
    assert columns.genre_names[columns.genre_codes].tolist() == expected_names
    # Codes number the distinct genres by first appearance (as pandas.factorize).
    first = list(dict.fromkeys(expected_names))
    assert columns.genre_names.tolist() == first


def test_every_column_row_for_row(demo_catalog):
    _assert_matches_the_catalog(catalog_columns())


def test_text_that_needs_quoting_and_unknown_numbers(demo_catalog):
    ids = list(Song.objects.order_by("id").values_list("id", flat=True)[:6])
    Song.objects.filter(pk=ids[0]).update(name='Comma, "quoted"\nand a new line', genres=["Rock, Indie", ' "Q" '])
    Song.objects.filter(pk=ids[1]).update(name="", genres=[], release_year=None, popularity=None)
    Song.objects.filter(pk=ids[2]).update(name="İstanbul ☂ naïve", key=None, mode=None, time_signature=None)
    Song.objects.filter(pk=ids[3]).update(name="NULL", genres=["null", "\\N"])
    Song.objects.filter(pk=ids[4]).update(loudness=-7.123456789012345, tempo=1e-300 + 120.0000000000001)
    columns = catalog_columns()
    _assert_matches_the_catalog(columns)
    assert columns.name.to_pylist()[:4] == ['Comma, "quoted"\nand a new line', "", "İstanbul ☂ naïve", "NULL"]
    assert np.isnan(columns.release_year[1]) and np.isnan(columns.key[2])


def test_an_empty_catalog():
    columns = catalog_columns()
    assert len(columns) == 0 and columns.X.shape == (0, len(FEATURE_NAMES))
    assert columns.genres[0].size == 0 and columns.name.to_pylist() == []


def test_the_features_reader_of_id_ranges(demo_catalog):
    """Labelling chunks read a range of ids; on Postgres as one binary COPY."""
    all_ids, X = selectors.song_feature_matrix()
    lo, hi = int(all_ids[100]), int(all_ids[199])
    ids, part = selectors.song_feature_matrix(id_range=(lo, hi))
    np.testing.assert_array_equal(ids, all_ids[100:200])
    np.testing.assert_array_equal(part, X[100:200])
    np.testing.assert_array_equal(X, catalog_columns().X)


def test_binary_and_csv_reads_hold_the_same_doubles(demo_catalog):
    if connection.vendor != "postgresql":
        _require("binary COPY is Postgres-only")
    ids, X = feature_matrix_binary()
    columns = catalog_columns()
    np.testing.assert_array_equal(ids, columns.ids)
    assert X.tobytes() == columns.X.tobytes()


def test_genre_pairs_parse_each_distinct_list_once():
    import pyarrow as pa

    rows, codes, names = genre_pairs(pa.array(['["Pop", "rock "]', None, "[]", '["ROCK"]', '["Pop", "rock "]']))
    assert rows.tolist() == [0, 0, 3, 4, 4]
    assert names.tolist() == ["pop", "rock"]
    assert names[codes].tolist() == ["pop", "rock", "rock", "pop", "rock"]


def test_a_line_break_in_a_title_far_into_a_long_read(demo_catalog, monkeypatch):
    """Pieces cut at line ends while the COPY arrives: a title with a line
    break in a later piece makes the read start again, whole."""
    from clustering import catalog_read

    monkeypatch.setattr(catalog_read, "PIECE_BYTES", 4096)
    columns = catalog_columns()
    _assert_matches_the_catalog(columns)
    assert len(columns.X) == 3000
    last = Song.objects.order_by("-id").values_list("id", flat=True)[5]
    Song.objects.filter(pk=last).update(name='two\nlines, and "quotes"\r\nthree')
    _assert_matches_the_catalog(catalog_columns())
