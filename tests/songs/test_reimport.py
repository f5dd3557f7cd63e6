"""A re-import stages only the rows whose content the catalog does not hold.

Every row carries two content hashes (its song's columns, its artist's);
the merge stores them on the rows it writes, edits by other means clear
them, and the next import stages a row only when one of them is not in the
catalog. These tests pin the outcome (rows, counts) and how many rows were
staged.
"""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from django.contrib.auth import get_user_model

from songs import services
from songs.importing import ARTIST_HASH_COLUMNS, ROW_HASH_COLUMNS, SONG_HASH_COLUMNS, STAGE_COLUMNS, content_hashes
from songs.models import Artist, Song
from songs.services import songs_import_file
from tests.conftest import flagship_rows

pytestmark = pytest.mark.django_db


class _Staged:
    """The rows each import staged, in the order the imports started."""

    def __init__(self):
        self.plans = []

    def __getitem__(self, i):
        return self.plans[i].rows_staged

    def __eq__(self, other):
        return [p.rows_staged for p in self.plans] == other

    def __repr__(self):
        return repr([p.rows_staged for p in self.plans])


@pytest.fixture
def staged(monkeypatch):
    record = _Staged()
    init = services._Plan.__init__

    def recording_init(self, **kwargs):
        init(self, **kwargs)
        record.plans.append(self)

    monkeypatch.setattr(services._Plan, "__init__", recording_init)
    return record


def run_import(path):
    job = songs_import_file(path=path)
    assert job.status == "succeeded", job.error
    return job


def counts(job):
    return job.rows_created, job.rows_updated, job.rows_unchanged, job.rows_duplicate


def test_unchanged_reimport_stages_nothing_and_keeps_every_row(catalog_csv, staged):
    rows = flagship_rows(40)
    first = run_import(catalog_csv(rows, name="a.csv"))
    assert counts(first) == (40, 0, 0, 0)
    assert not Song.objects.filter(content_hash__isnull=True).exists()
    assert not Artist.objects.filter(content_hash__isnull=True).exists()
    before = {s.external_id: (s.updated_at, s.content_hash) for s in Song.objects.all()}

    again = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(again) == (0, 0, 40, 0)
    assert staged == [40, 0]
    assert {s.external_id: (s.updated_at, s.content_hash) for s in Song.objects.all()} == before


def test_a_partly_changed_file_stages_only_what_changed(catalog_csv, staged):
    rows = flagship_rows(50)
    run_import(catalog_csv(rows, name="a.csv"))
    rows[3]["energy"] = "0.99"
    rows[17]["name_song"] = "Renamed"
    rows[30]["genres"] = "['sea shanty']"
    rows += flagship_rows(2, start=51)
    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (2, 3, 47, 0)
    assert staged[-1] == 5
    assert Song.objects.get(external_id=rows[3]["id_songs"]).energy == pytest.approx(0.99)
    assert Song.objects.get(external_id=rows[17]["id_songs"]).name == "Renamed"
    assert Song.objects.get(external_id=rows[30]["id_songs"]).genres == ["sea shanty"]
    assert Song.objects.count() == 52
    # The next import of the same file finds everything in place.
    assert counts(run_import(catalog_csv(rows, name="c.csv"))) == (0, 0, 52, 0)
    assert staged[-1] == 0


def test_a_song_edited_since_the_import_is_written_again(catalog_csv, staged):
    rows = flagship_rows(10)
    run_import(catalog_csv(rows, name="a.csv"))
    song = Song.objects.get(external_id=rows[4]["id_songs"])
    song.name, song.tempo = "Edited in the admin", 200.0
    song.save()
    assert Song.objects.get(pk=song.pk).content_hash is None

    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 1, 9, 0)
    assert staged[-1] == 1
    song.refresh_from_db()
    assert (song.name, song.tempo) == (rows[4]["name_song"], pytest.approx(float(rows[4]["tempo"])))
    assert song.content_hash is not None


def test_a_save_of_some_fields_clears_the_hash_too(catalog_csv):
    run_import(catalog_csv(flagship_rows(3)))
    song = Song.objects.first()
    song.name = "Partly saved"
    song.save(update_fields=["name"])
    assert Song.objects.get(pk=song.pk).content_hash is None


def test_a_queryset_update_is_an_edit_too_and_is_written_again(catalog_csv, staged):
    rows = flagship_rows(8)
    run_import(catalog_csv(rows, name="a.csv"))
    edited = [rows[2]["id_songs"], rows[5]["id_songs"]]
    assert Song.objects.filter(external_id__in=edited).update(tempo=199.0) == 2
    assert list(Song.objects.filter(external_id__in=edited).values_list("content_hash", flat=True)) == [None, None]
    assert Song.objects.filter(content_hash__isnull=False).count() == 6
    # Writing the hash itself is left alone (the import's own bookkeeping).
    Song.objects.filter(external_id=rows[0]["id_songs"]).update(content_hash=7)
    assert Song.objects.get(external_id=rows[0]["id_songs"]).content_hash == 7

    job = run_import(catalog_csv(rows, name="b.csv"))
    # Staged: the two edited songs and the one whose hash was overwritten (same content: unchanged).
    assert counts(job) == (0, 2, 6, 0)
    assert staged[-1] == 3
    assert Song.objects.get(external_id=rows[0]["id_songs"]).content_hash != 7
    for i in (2, 5):
        assert Song.objects.get(external_id=rows[i]["id_songs"]).tempo == pytest.approx(float(rows[i]["tempo"]))
    assert not Song.objects.filter(content_hash__isnull=True).exists()


def test_a_bulk_update_clears_the_hashes_of_the_rows_it_writes(catalog_csv, staged):
    rows = flagship_rows(5)
    run_import(catalog_csv(rows, name="a.csv"))
    songs = list(Song.objects.filter(external_id__in=[rows[1]["id_songs"], rows[3]["id_songs"]]))
    for song in songs:
        song.energy = 0.01
    Song.objects.bulk_update(songs, ["energy"])
    assert sorted(Song.objects.filter(content_hash__isnull=True).values_list("pk", flat=True)) == sorted(
        s.pk for s in songs
    )
    assert counts(run_import(catalog_csv(rows, name="b.csv"))) == (0, 2, 3, 0)
    assert staged[-1] == 2


def test_a_queryset_update_of_artists_clears_their_songs_hashes_too(catalog_csv, staged):
    rows = flagship_rows(14)
    run_import(catalog_csv(rows, name="a.csv"))
    artist = Artist.objects.get(external_id=rows[0]["id_artists"])
    # Filtered by the column it changes: the songs are found before the artist changes.
    assert Artist.objects.filter(name=artist.name).update(name="Edited") == 1
    assert Artist.objects.get(pk=artist.pk).content_hash is None
    assert not Song.objects.filter(artist=artist, content_hash__isnull=False).exists()
    assert Song.objects.filter(content_hash__isnull=True).count() == Song.objects.filter(artist=artist).count() == 2

    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 0, 14, 0)
    assert staged[-1] == 2
    assert Artist.objects.get(pk=artist.pk).name == rows[0]["name_artists"]


def test_a_song_saved_without_a_change_is_not_counted_as_updated(catalog_csv, staged):
    rows = flagship_rows(6)
    run_import(catalog_csv(rows, name="a.csv"))
    song = Song.objects.get(external_id=rows[1]["id_songs"])
    stamp = song.updated_at
    song.save()  # the admin's Save without a change

    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 0, 6, 0)
    assert staged[-1] == 1  # compared in full once
    song.refresh_from_db()
    assert song.content_hash is not None and song.updated_at == stamp
    assert staged[-1] == 1 and counts(run_import(catalog_csv(rows, name="c.csv"))) == (0, 0, 6, 0)
    assert staged[-1] == 0


def test_an_edit_through_the_admin_clears_the_hash(catalog_csv, client):
    rows = flagship_rows(3)
    run_import(catalog_csv(rows))
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(user)
    song = Song.objects.get(external_id=rows[0]["id_songs"])
    page = client.get(f"/admin/songs/song/{song.pk}/change/")
    assert page.status_code == 200 and b"content_hash" not in page.content
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, dt.datetime):  # a split widget: date and time apart
            data[f"{name}_0"], data[f"{name}_1"] = value.date().isoformat(), value.time().isoformat()
        else:
            data[name] = "" if value is None else value
    data["name"] = "Retitled"
    data["genres"] = '["indie pop"]'
    response = client.post(f"/admin/songs/song/{song.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    song.refresh_from_db()
    assert song.name == "Retitled" and song.content_hash is None
    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 1, 2, 0)
    song.refresh_from_db()
    assert song.name == rows[0]["name_song"]


def test_an_artist_change_in_its_last_row_is_written(catalog_csv, staged):
    rows = flagship_rows(21)  # 7 artists, 3 rows each
    run_import(catalog_csv(rows, name="a.csv"))
    artist_id = rows[20]["id_artists"]
    for row in rows:
        if row["id_artists"] == artist_id:
            row["followers"] = "999"
    rows[20]["name_artists"] = "Renamed Artist"  # its last row only: the last row wins
    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 0, 21, 0)  # the songs themselves did not change
    assert staged[-1] == 3
    artist = Artist.objects.get(external_id=artist_id)
    assert (artist.name, artist.followers) == ("Renamed Artist", 999)
    assert counts(run_import(catalog_csv(rows, name="c.csv"))) == (0, 0, 21, 0)
    assert staged[-1] == 0


def test_an_artist_change_in_an_earlier_row_only_does_not_win(catalog_csv, staged):
    rows = flagship_rows(21)
    run_import(catalog_csv(rows, name="a.csv"))
    artist_id = rows[0]["id_artists"]
    name = Artist.objects.get(external_id=artist_id).name
    rows[0]["name_artists"] = "Only In The First Row"  # a later row of the artist keeps the old name
    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 0, 21, 0)
    assert staged[-1] == 1
    assert Artist.objects.get(external_id=artist_id).name == name


def test_rows_of_an_artist_in_another_order_follow_the_last_one(catalog_csv):
    rows = flagship_rows(2, id_artists="ART1", name_artists="Same")
    rows[0]["followers"], rows[1]["followers"] = "10", "20"
    run_import(catalog_csv(rows, name="a.csv"))
    assert Artist.objects.get(external_id="ART1").followers == 20
    job = run_import(catalog_csv(rows[::-1], name="b.csv"))
    assert counts(job) == (0, 0, 2, 0)
    assert Artist.objects.get(external_id="ART1").followers == 10


def test_an_edited_artist_is_written_again_with_its_songs_compared(catalog_csv, staged):
    rows = flagship_rows(14)
    run_import(catalog_csv(rows, name="a.csv"))
    artist = Artist.objects.get(external_id=rows[0]["id_artists"])
    artist.name = "Edited"
    artist.save()
    assert Artist.objects.get(pk=artist.pk).content_hash is None
    assert not Song.objects.filter(artist=artist, content_hash__isnull=False).exists()

    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 0, 14, 0)
    assert staged[-1] == 2  # the artist's two songs
    artist.refresh_from_db()
    assert artist.name == rows[0]["name_artists"] and artist.content_hash is not None
    assert not Song.objects.filter(content_hash__isnull=True).exists()


def test_repeated_ids_take_the_last_row_and_count_duplicates(catalog_csv, staged):
    rows = flagship_rows(6)
    repeat = dict(rows[2], energy="0.05")
    rows.append(repeat)  # the last row of SONG…3 now says 0.05
    first = run_import(catalog_csv(rows, name="a.csv"))
    assert counts(first) == (6, 0, 0, 1)
    assert Song.objects.get(external_id=repeat["id_songs"]).energy == pytest.approx(0.05)

    again = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(again) == (0, 0, 6, 1)
    assert staged[-1] == 2  # both rows of the repeated id, so that the last one wins

    rows[2]["energy"] = "0.77"  # the earlier row changes, the last one does not
    third = run_import(catalog_csv(rows, name="c.csv"))
    assert counts(third) == (0, 0, 6, 1)
    assert Song.objects.get(external_id=repeat["id_songs"]).energy == pytest.approx(0.05)

    rows[-1]["energy"] = "0.66"  # the last one changes
    fourth = run_import(catalog_csv(rows, name="d.csv"))
    assert counts(fourth) == (0, 1, 5, 1)
    assert Song.objects.get(external_id=repeat["id_songs"]).energy == pytest.approx(0.66)


def test_an_import_merged_meanwhile_makes_the_next_compare_every_row(catalog_csv, monkeypatch, staged):
    rows = flagship_rows(8)
    run_import(catalog_csv(rows, name="a.csv"))
    other = [dict(r) for r in rows]
    other[5]["name_song"] = "Written meanwhile"
    other_path = catalog_csv(other, name="other.csv")
    duplicate_lines = services._Plan.duplicate_lines
    done = []

    def meanwhile(self):
        if not done:  # another import merges after this one read its file
            done.append(True)
            monkeypatch.setattr(services._Plan, "duplicate_lines", duplicate_lines)
            run_import(other_path)
        return duplicate_lines(self)

    monkeypatch.setattr(services._Plan, "duplicate_lines", meanwhile)
    job = run_import(catalog_csv(rows, name="b.csv"))
    # The file's row was identical to the catalog when it was read; the
    # import merged in between changed it: the later import's file wins.
    assert Song.objects.get(external_id=rows[5]["id_songs"]).name == rows[5]["name_song"]
    assert counts(job) == (0, 1, 7, 0)
    # The first import, then this one: every row, in its second pass. (The
    # one meanwhile stages its changed row, or every row when it saw this
    # one's job already merging, which it cannot tell from merged.)
    assert (staged[0], staged[1]) == (8, 8) and staged[2] in (1, 8)


def test_rows_stored_before_hashes_are_compared_once(catalog_csv, staged):
    rows = flagship_rows(9)
    run_import(catalog_csv(rows, name="a.csv"))
    Song.objects.update(content_hash=None)
    Artist.objects.update(content_hash=None)
    job = run_import(catalog_csv(rows, name="b.csv"))
    assert counts(job) == (0, 0, 9, 0)
    assert staged[-1] == 9
    assert not Song.objects.filter(content_hash__isnull=True).exists()
    assert not Artist.objects.filter(content_hash__isnull=True).exists()
    assert counts(run_import(catalog_csv(rows, name="c.csv"))) == (0, 0, 9, 0)
    assert staged[-1] == 0


# --- the hash itself ------------------------------------------------------------


def _table(**columns) -> pa.Table:
    base = {
        "line": [2, 3],
        "external_id": ["a", "b"],
        "name": ["Song", "Song"],
        "album": [None, "x"],
        "artist_external_id": ["r", "r"],
        "artist_name": ["R", "R"],
        "artist_genres": ["[]", "[]"],
        "artist_followers": [1, None],
        "artist_popularity": [None, 5],
        "genres": ["[]", '["pop"]'],
        "popularity": [3, 3],
        "explicit": [True, None],
        "release_date": pa.array([dt.date(2000, 1, 1), None], pa.date32()),
        "release_year": [2000, None],
        "danceability": [0.5, 0.5],
        "energy": [0.25, 0.25],
        "loudness": [-5.0, -5.0],
        "speechiness": [0.1, 0.1],
        "acousticness": [0.2, 0.2],
        "instrumentalness": [0.0, 0.0],
        "liveness": [0.3, 0.3],
        "valence": [0.4, 0.4],
        "tempo": [120.0, 120.0],
        "duration_ms": [200_000, 200_000],
        "key": [1, None],
        "mode": [0, 1],
        "time_signature": [4, 4],
    }
    base.update(columns)
    return pa.table({c: base[c] for c in STAGE_COLUMNS})


def test_content_hashes_are_stable_and_see_every_column():
    table = _table()
    song = content_hashes(table, SONG_HASH_COLUMNS)
    assert song.dtype == np.int64 and song[0] != song[1]
    # The same values hash alike whatever the batch, its chunks and its other rows.
    again = content_hashes(pa.concat_tables([table.slice(1), table.slice(0, 1)]), SONG_HASH_COLUMNS)
    assert list(again) == [song[1], song[0]]
    # A pinned value: stored hashes must not change between processes or versions.
    assert (
        content_hashes(table.slice(0, 1), ("external_id",))[0]
        == content_hashes(_table(external_id=["a", "zzz"]).slice(0, 1), ("external_id",))[0]
    )
    for column in SONG_HASH_COLUMNS:
        values = table.column(column).to_pylist()
        changed = values[1]
        if changed is None:
            changed = values[0]  # null -> a value
        elif isinstance(changed, str):
            changed += "!"
        elif isinstance(changed, bool):
            changed = not changed
        elif isinstance(changed, float):
            changed += 0.001
        elif isinstance(changed, int):
            changed += 1
        edited = (
            _table(**{column: [values[0], changed]})
            if column != "release_date"
            else _table(release_date=pa.array([dt.date(2000, 1, 1), dt.date(2000, 1, 1)], pa.date32()))
        )
        assert content_hashes(edited, SONG_HASH_COLUMNS)[1] != song[1], column
    artist = content_hashes(table, ARTIST_HASH_COLUMNS)
    assert artist[0] != artist[1]  # followers and popularity differ (and nulls count)
    assert content_hashes(_table(artist_name=["R", "S"]), ARTIST_HASH_COLUMNS)[1] != artist[1]
    # A song's stored hash is its row's: its artist's columns count too.
    row = content_hashes(table, ROW_HASH_COLUMNS)
    assert content_hashes(_table(artist_name=["R", "S"]), ROW_HASH_COLUMNS)[1] != row[1]
    assert content_hashes(_table(artist_name=["R", "S"]), ROW_HASH_COLUMNS)[0] == row[0]


def test_content_hashes_tell_null_from_empty_and_moved_bytes():
    a = content_hashes(_table(album=[None, ""]), ("album",))
    assert a[0] != a[1]
    b = content_hashes(_table(name=["ab", "ba"]), ("name",))
    assert b[0] != b[1]
    c = content_hashes(_table(name=["a", "a"], album=["b", None]), ("name", "album"))
    d = content_hashes(_table(name=["ab", "a"], album=["", None]), ("name", "album"))
    assert c[0] != d[0]


def test_string_hashes_are_the_same_by_slices(monkeypatch):
    """Millions of strings (a run's titles) are hashed a slice at a time:
    each hash stays with its own string, nulls and a sliced input included."""
    from songs import hashing

    values = pa.array([f"title {i}" if i % 5 else None for i in range(1, 40)] + ["", "Ünïcode ✓"])
    whole = hashing.string_hashes(values)
    monkeypatch.setattr(hashing, "HASH_SLICE", 4)
    assert np.array_equal(hashing.string_hashes(values), whole)
    assert np.array_equal(hashing.string_hashes(values.slice(3, 20)), whole[3:23])
    assert len(set(whole.tolist())) == len(values) - 7 + 1  # the 7 nulls share one value
