"""External ids are checked on import: a bad id rejects its row with line, column and reason."""

import pytest

from songs.importing import ID_MAX_LENGTH, id_problem
from songs.models import Artist, Song
from songs.services import songs_import_file
from tests.conftest import flagship_rows

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value, reason",
    [
        ("a/b", "id contains '/'"),
        ("../x", "id contains '/'"),
        ("a\\b", "id contains '\\\\'"),
        ("what?", "id contains '?'"),
        ("x#1", "id contains '#'"),
        ("100%", "id contains '%'"),
        ("..", "is not allowed"),
        ("a\tb", "control character (U+0009)"),
        ("a\x0bb", "control character (U+000B)"),
        ("a\x85b", "control character (U+0085)"),
        ("a\u2028b", "control character (U+2028)"),
        ("x" * (ID_MAX_LENGTH + 1), "longer than 64"),
    ],
)
def test_bad_song_id_rejects_the_row_with_line_column_and_reason(catalog_csv, value, reason):
    rows = flagship_rows(30)
    rows[4]["id_songs"] = value
    job = songs_import_file(path=catalog_csv(rows))
    assert job.status == "succeeded", job.error
    assert job.rows_rejected == 1 and job.rows_created == 29
    [rejection] = job.rejected_rows
    assert rejection["line"] == 6  # header is line 1
    assert rejection["column"] in ("id_songs", "external_id")
    assert reason in rejection["reason"]
    assert not Song.objects.filter(external_id=value).exists()


def test_bad_artist_id_rejects_the_row(catalog_csv):
    rows = flagship_rows(30)
    rows[9]["id_artists"] = "art/1"
    job = songs_import_file(path=catalog_csv(rows))
    assert job.status == "succeeded", job.error
    [rejection] = job.rejected_rows
    assert (rejection["line"], rejection["column"]) == (11, "id_artists")
    assert "id contains '/'" in rejection["reason"]
    assert not Artist.objects.filter(external_id="art/1").exists()


def test_ordinary_ids_pass():
    for value in ("0000000000000000000001", "spotify:track:4uLU6hMCjMI75M1A2tKUQC", "mc-0a1b", "a.b", "a b", "ünï"):
        assert id_problem(value) is None, value
