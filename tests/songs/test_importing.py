"""The CSV import: formats, validation, whole-file rejection and upserts."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from songs.importing import derived_id
from songs.models import Artist, ImportJob, Song
from songs.services import songs_import_file
from tests.conftest import SHARED_DATA, flagship_rows

pytestmark = pytest.mark.django_db


def snapshot():
    """Everything an import may touch, to prove a rejection changed nothing."""
    songs = list(Song.objects.order_by("external_id").values())
    artists = list(Artist.objects.order_by("external_id").values())
    return songs, artists


@pytest.fixture
def seeded(catalog_csv):
    """A catalog with 20 songs already in it."""
    job = songs_import_file(path=catalog_csv(flagship_rows(20), name="seed.csv"))
    assert job.status == "succeeded", job.error
    return snapshot()


def run_import(path, **kwargs):
    return songs_import_file(path=path, **kwargs)


# --- good files ----------------------------------------------------------


def test_flagship_import_stores_every_column(catalog_csv):
    job = run_import(catalog_csv(flagship_rows(3)))
    assert job.status == "succeeded", job.error
    assert job.format == "flagship"
    assert (job.rows_read, job.rows_created, job.rows_updated, job.rows_rejected) == (3, 3, 0, 0)
    assert len(job.sha256) == 64
    song = Song.objects.select_related("artist").get(external_id="SONG000000000000000001")
    assert song.name == "Synthetic Song 1"
    assert song.artist.external_id == "ART0000000000000000001"
    assert song.artist.name == "Synthetic Artist 1"
    assert song.artist.genres == ["indie pop", "chamber pop"]
    assert song.artist.followers == 12034 and song.artist.popularity == 55
    assert song.genres == ["indie pop", "chamber pop"]
    assert song.popularity == 41 and song.explicit is False
    assert song.release_date == dt.date(1999, 4, 12) and song.release_year == 1999
    assert song.instrumentalness == pytest.approx(1.55e-05)
    assert song.duration_ms == 215000 and song.tempo == pytest.approx(81.5)
    assert (song.key, song.mode, song.time_signature) == (5, 1, 4)
    assert song.cluster_id is None and song.map_x is None


def test_reimport_updates_in_place(catalog_csv):
    rows = flagship_rows(5)
    run_import(catalog_csv(rows, name="a.csv"))
    rows[2]["energy"] = "0.99"
    rows[2]["name_song"] = "Renamed Song"
    job = run_import(catalog_csv(rows, name="b.csv"))
    assert (job.rows_created, job.rows_updated, job.rows_unchanged) == (0, 1, 4)
    assert Song.objects.count() == 5
    song = Song.objects.get(external_id=rows[2]["id_songs"])
    assert song.energy == pytest.approx(0.99) and song.name == "Renamed Song"


def test_duplicate_ids_in_one_file_last_wins_and_are_counted(catalog_csv):
    rows = flagship_rows(4)
    later = dict(rows[0], name_song="Second Version", energy="0.33")
    job = run_import(catalog_csv([*rows, later]))
    assert job.status == "succeeded"
    assert job.rows_duplicate == 1 and job.rows_created == 4
    assert Song.objects.count() == 4
    song = Song.objects.get(external_id=rows[0]["id_songs"])
    assert song.name == "Second Version" and song.energy == pytest.approx(0.33)


def test_export_quirks_bom_crlf_quotes_scripts_dates(catalog_csv):
    rows = flagship_rows(6)
    rows[0]["name_song"] = 'Comma, "Quoted" Song'
    rows[1]["name_song"] = "夜に駆ける"
    rows[2]["name_song"] = "Песня"
    rows[3]["release_date"] = "1987"
    rows[4]["release_date"] = "25/12/1990"  # day-first
    rows[5]["genres"] = "[]"
    job = run_import(catalog_csv(rows, newline="\r\n", bom=True))
    assert job.status == "succeeded", job.error
    assert job.encoding == "utf-8-sig" and job.rows_created == 6
    names = set(Song.objects.values_list("name", flat=True))
    assert {'Comma, "Quoted" Song', "夜に駆ける", "Песня"} <= names
    assert Song.objects.get(external_id=rows[3]["id_songs"]).release_year == 1987
    assert Song.objects.get(external_id=rows[3]["id_songs"]).release_date is None
    assert Song.objects.get(external_id=rows[4]["id_songs"]).release_date == dt.date(1990, 12, 25)
    assert Song.objects.get(external_id=rows[5]["id_songs"]).genres == []


def test_latin1_file_falls_back(catalog_csv):
    rows = flagship_rows(3)
    rows[0]["name_song"] = "Café Noël"
    job = run_import(catalog_csv(rows, encoding="latin-1"))
    assert job.status == "succeeded", job.error
    assert job.encoding == "latin-1"
    assert Song.objects.filter(name="Café Noël").exists()


def test_spotify_style_export_without_ids_gets_stable_derived_ids(catalog_csv):
    header = [
        "track_name",
        "track_artist",
        "playlist_genre",
        "track_album_release_date",
        "track_popularity",
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
        "key",
        "mode",
        "time_signature",
    ]
    base = {
        "danceability": "0.5",
        "energy": "0.5",
        "loudness": "-7",
        "speechiness": "0.05",
        "acousticness": "0.2",
        "instrumentalness": "0",
        "liveness": "0.1",
        "valence": "0.4",
        "tempo": "120",
        "duration_ms": "200000",
        "key": "1",
        "mode": "0",
        "time_signature": "4",
        "track_popularity": "70",
        "track_album_release_date": "8/16/2024",
    }
    rows = [
        dict(base, track_name="Die With A Smile", track_artist="Lady Gaga, Bruno Mars", playlist_genre="pop"),
        dict(base, track_name="Birds", track_artist="Billie", playlist_genre="pop"),
        # the same track again, listed in another playlist
        dict(base, track_name="Die With A Smile", track_artist="Lady Gaga, Bruno Mars", playlist_genre="latin"),
    ]
    job = run_import(catalog_csv(rows, header=header))
    assert job.status == "succeeded", job.error
    assert job.format == "spotify"
    assert Song.objects.count() == 2 and job.rows_duplicate == 1
    song = Song.objects.get(external_id=derived_id("Lady Gaga, Bruno Mars", "Die With A Smile"))
    assert song.genres == ["latin"]
    assert song.release_date == dt.date(2024, 8, 16)
    # Case and spacing do not change the derived id.
    assert derived_id("lady gaga,  bruno mars", "DIE WITH A SMILE ") == song.external_id


@pytest.mark.realdata
def test_real_spotify_export_gives_one_song_per_distinct_track():
    path = SHARED_DATA / "high_popularity_spotify_data.csv"
    if not path.exists():
        pytest.skip(f"{path} is not here")
    job = run_import(path)
    assert job.status == "succeeded", job.error
    assert job.rows_read == 1686 and job.rows_created == 1420 and job.rows_rejected == 0
    before = snapshot()
    again = run_import(path)
    assert again.status == "succeeded"
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, 1420)
    assert snapshot()[0] == [dict(s) for s in before[0]]


# --- bad rows inside an otherwise good file -------------------------------


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("energy", "loud", "not a number"),
        ("energy", "NaN", "not a finite number"),
        ("tempo", "inf", "not a finite number"),
        ("valence", "1.7", "out of range"),
        ("loudness", "-75", "out of range"),
        ("tempo", "301", "out of range"),
        ("duration_ms", "0", "out of range"),
        ("duration_ms", "90000000", "out of range"),
        ("danceability", "", "missing value"),
    ],
)
def test_bad_value_rejects_the_row_with_line_column_and_reason(catalog_csv, column, value, reason):
    rows = flagship_rows(30)
    rows[9][column] = value
    job = run_import(catalog_csv(rows))
    assert job.status == "succeeded", job.error
    assert job.rows_rejected == 1 and job.rows_created == 29
    [rejection] = job.rejected_rows
    assert rejection["line"] == 11  # header is line 1
    assert rejection["column"] == column
    assert reason in rejection["reason"]
    assert not Song.objects.filter(external_id=rows[9]["id_songs"]).exists()


def test_row_with_too_many_fields_is_rejected(catalog_csv):
    path = catalog_csv(flagship_rows(30))
    lines = path.read_text().splitlines()
    lines[5] += ",surplus,fields"
    path.write_text("\n".join(lines) + "\n")
    job = run_import(path)
    assert job.status == "succeeded"
    assert job.rows_rejected == 1 and job.rows_created == 29
    assert job.rejected_rows[0]["line"] == 6
    assert "too many fields: 25 where the header has 23" in job.rejected_rows[0]["reason"]


# --- whole-file rejections leave the catalog exactly as it was ------------


def _write_bytes(tmp_path, data: bytes):
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "The file is empty"),
        (",".join(flagship_rows(1)[0]).encode() + b"\n", "header but no data rows"),
        (b"id_songs;name_song;energy\n1;a;0.5\n", "semicolon-separated"),
        (b"foo,bar,baz\n1,2,3\n", "Unknown header"),
        (bytes(range(256)) * 40, "not a CSV text file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50, "not a CSV text file"),
    ],
    ids=["empty", "header-only", "semicolon", "unknown-header", "garbage", "png"],
)
def test_whole_file_rejections(tmp_path, seeded, content, message):
    job = run_import(_write_bytes(tmp_path, content))
    assert job.status == "failed"
    assert message in job.error
    assert snapshot() == seeded


def test_unknown_header_lists_expected_columns(tmp_path, seeded):
    job = run_import(_write_bytes(tmp_path, b"foo,bar,baz\n1,2,3\n"))
    assert "id_songs" in job.error and "danceability" in job.error and "track_name" in job.error


def test_missing_feature_column_is_named(catalog_csv, seeded):
    from songs.importing import FLAGSHIP_HEADER

    header = [h for h in FLAGSHIP_HEADER if h != "tempo"]
    job = run_import(catalog_csv(flagship_rows(5, start=100), header=header))
    assert job.status == "failed"
    assert "Missing feature column: tempo" in job.error
    assert snapshot() == seeded


def test_too_many_bad_rows_rejects_the_file_and_keeps_the_catalog(catalog_csv, seeded):
    rows = flagship_rows(20, start=1)  # would update the seeded songs ...
    for row in rows:
        row["energy"] = "0.01"
    for row in rows[:5]:  # ... but a quarter of the rows are bad
        row["tempo"] = "fast"
    job = run_import(catalog_csv(rows))
    assert job.status == "failed"
    assert "5 of 20 rows (25%) are invalid" in job.error
    assert "line 2 tempo" in job.error
    assert snapshot() == seeded


def test_share_limit_is_configurable(catalog_csv):
    rows = flagship_rows(20)
    for row in rows[:5]:
        row["tempo"] = "fast"
    job = run_import(catalog_csv(rows), max_rejected_share=0.3)
    assert job.status == "succeeded" and job.rows_created == 15 and job.rows_rejected == 5


def test_staging_table_is_dropped_after_success_and_failure(catalog_csv, tmp_path):
    from django.db import connection

    ok = run_import(catalog_csv(flagship_rows(3)))
    bad = run_import(_write_bytes(tmp_path, b"foo,bar\n1,2\n"))
    tables = connection.introspection.table_names()
    assert not [t for t in tables if t.startswith("songs_import_stage_")]
    assert ok.status == "succeeded" and bad.status == "failed"


# --- the command -----------------------------------------------------------


def test_command_prints_summary(catalog_csv, capsys):
    call_command("import_songs", str(catalog_csv(flagship_rows(4))))
    out = capsys.readouterr().out
    assert "4 rows read, 4 created, 0 updated" in out
    assert ImportJob.objects.get().status == "succeeded"


def test_command_fails_with_clear_message(tmp_path, seeded):
    with pytest.raises(CommandError, match="semicolon-separated"):
        call_command("import_songs", str(_write_bytes(tmp_path, b"a;b;c\n1;2;3\n")))
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_songs", str(tmp_path / "missing.csv"))
    assert snapshot() == seeded


def test_command_exit_code_is_non_zero_on_rejection(tmp_path, capsys):
    """Run as a user would (`manage.py import_songs FILE`): its exit status and message."""
    from django.core.management import execute_from_command_line

    bad = _write_bytes(tmp_path, b"foo,bar\n1,2\n")
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "import_songs", str(bad)])
    assert exited.value.code != 0
    assert "Unknown header" in capsys.readouterr().err


def _require_postgres():
    from django.db import connection

    from tests.conftest import _require

    if connection.vendor != "postgresql":
        _require("trigram search indexes and concurrent index builds are Postgres-only")


def _song_indexes() -> dict[str, bool]:
    """Name -> valid, of the indexes a bulk load rebuilds."""
    from django.db import connection

    from songs import services

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'songs_song'::regclass AND c.relname = ANY(%s)",
            [list(services.BULK_REBUILT_INDEXES)],
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_bulk_load_rebuilds_the_indexes_while_reads_go_on(catalog_csv, monkeypatch):
    """A bulk load drops the title and genre indexes CONCURRENTLY before its
    merge and builds them again inside it: a reader on another connection,
    in the middle of the merge, gets its answer at once (no ACCESS EXCLUSIVE
    lock on songs) and does not see the uncommitted songs."""
    from django.db import DEFAULT_DB_ALIAS, connection, connections
    from django.test.utils import CaptureQueriesContext

    from songs import services

    _require_postgres()
    monkeypatch.setattr(services, "SEARCH_INDEX_REBUILD_ROWS", 10)
    assert _song_indexes() == dict.fromkeys(services.BULK_REBUILT_INDEXES, True)
    seen_by_reader: list[int] = []
    real_merge = services._merge

    def merge_then_read(*args, **kwargs):
        counts = real_merge(*args, **kwargs)  # rows written and indexes built, not committed
        reader = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with reader.cursor() as cursor:
                cursor.execute("SET lock_timeout = '1s'")  # a wait for the merge would raise here
                cursor.execute("SELECT count(*) FROM songs_song WHERE upper(name) LIKE '%%HARBOR%%'")
                seen_by_reader.append(cursor.fetchone()[0])
        finally:
            reader.close()
        return counts

    monkeypatch.setattr(services, "_merge", merge_then_read)
    rows = flagship_rows(60, name_song="Harbor Lights")
    with CaptureQueriesContext(connection) as queries:
        job = run_import(catalog_csv(rows))  # 60 new songs into an empty catalog
    assert job.status == "succeeded", job.error
    assert seen_by_reader == [0]
    sql = [q["sql"] for q in queries.captured_queries]
    assert {s for s in sql if s.startswith("DROP INDEX")} == {
        f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"' for name in services.BULK_REBUILT_INDEXES
    }
    assert job.rows_created == 60 and _song_indexes() == dict.fromkeys(services.BULK_REBUILT_INDEXES, True)
    assert Song.objects.filter(name__icontains="harbor").count() == 60
    connection.cursor().execute("ANALYZE songs_song")  # the catalog's size as Postgres sees it
    with CaptureQueriesContext(connection) as queries:
        again = run_import(catalog_csv(rows))  # nothing new: the indexes stay
    assert again.rows_unchanged == 60
    assert not any(q["sql"].startswith(("DROP INDEX", "CREATE INDEX")) for q in queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_bulk_load_that_fails_leaves_the_indexes(catalog_csv, monkeypatch):
    """A merge that fails after the indexes were dropped: nothing stored, and
    the indexes are back (re-created concurrently)."""
    from songs import services

    _require_postgres()
    monkeypatch.setattr(services, "SEARCH_INDEX_REBUILD_ROWS", 10)

    def failing_merge(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_merge", failing_merge)
    job = run_import(catalog_csv(flagship_rows(30)))
    assert job.status == "failed" and "went away" in job.error
    assert Song.objects.count() == 0
    assert _song_indexes() == dict.fromkeys(services.BULK_REBUILT_INDEXES, True)


@pytest.mark.django_db(transaction=True)
def test_missing_or_invalid_indexes_are_repaired(catalog_csv):
    """A load whose process died between dropping and re-creating: the next
    import (or the sweeper) builds the missing index and replaces an invalid one."""
    from django.db import connection

    from songs import services

    _require_postgres()
    run_import(catalog_csv(flagship_rows(5)))
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX song_name_trgm")
        # What an interrupted CREATE INDEX CONCURRENTLY leaves: an invalid index.
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'song_genres_gin'::regclass")
    assert _song_indexes()["song_genres_gin"] is False and "song_name_trgm" not in _song_indexes()
    assert services.import_jobs_fail_stale() == 0  # the sweeper's pass
    assert _song_indexes() == dict.fromkeys(services.BULK_REBUILT_INDEXES, True)


def test_rebuilt_index_definitions_match_the_migrations():
    """The definitions a repair or a bulk load runs are the migrations' own."""
    from django.db import connection

    from songs import services

    _require_postgres()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'songs_song' AND indexname = ANY(%s)",
            [list(services.BULK_REBUILT_INDEXES)],
        )
        stored = {name: definition.replace("public.", "") for name, definition in cursor.fetchall()}
    expected = {
        name: definition.format(concurrently="").replace("INDEX  IF NOT EXISTS", "INDEX")
        for name, definition in services.BULK_REBUILT_INDEXES.items()
    }
    assert stored == expected


def _merge_statements(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].removeprefix("WITH w AS (").startswith("INSERT INTO songs_")
    ]


def test_a_first_import_inserts_plainly_and_a_later_one_merges(catalog_csv):
    """Into empty tables the merge is a plain INSERT (no conflict can
    arise); once songs are stored it is the upsert, which updates them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = flagship_rows(12)
    with CaptureQueriesContext(connection) as queries:
        first = run_import(catalog_csv(rows, name="a.csv"))
    assert (first.status, first.rows_created) == ("succeeded", 12), first.error
    statements = _merge_statements(queries)
    assert len(statements) == 2 and not any("ON CONFLICT" in s for s in statements)  # artists, then songs
    rows[0]["name_song"] = "Renamed"
    rows += flagship_rows(3, start=13)
    with CaptureQueriesContext(connection) as queries:
        second = run_import(catalog_csv(rows, name="b.csv"))
    assert (second.rows_created, second.rows_updated, second.rows_unchanged) == (3, 1, 11)
    assert all("ON CONFLICT" in s for s in _merge_statements(queries))
    assert Song.objects.get(external_id=rows[0]["id_songs"]).name == "Renamed"
    assert Song.objects.count() == 15


def test_a_song_stored_while_a_first_import_checked_is_merged_not_lost(catalog_csv, monkeypatch, seeded):
    """The plain INSERT of a first import meets a row another writer added
    after the emptiness check: it fails on the unique index inside its
    savepoint and the upsert merges the file instead; nothing is lost."""
    from songs import services

    monkeypatch.setattr(services, "_table_empty", lambda cursor, table: True)  # the check saw no row
    rows = flagship_rows(25)  # the 20 stored songs (one changed) and 5 new ones
    rows[3]["name_song"] = "Changed meanwhile"
    job = run_import(catalog_csv(rows))
    assert job.status == "succeeded", job.error
    assert (job.rows_created, job.rows_updated, job.rows_unchanged) == (5, 1, 19)
    assert Song.objects.count() == 25 and Artist.objects.count() == 7
    assert Song.objects.get(external_id=rows[3]["id_songs"]).name == "Changed meanwhile"


def test_public_ids_compare_bytewise_on_postgres():
    """Migration 0008: the unique indexes on public ids sort bytewise (the
    merge orders its rows the same way, which keeps their pages hot)."""
    from django.db import connection

    _require_postgres()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attrelid::regclass::text, c.collname FROM pg_attribute a "
            "JOIN pg_collation c ON c.oid = a.attcollation "
            "WHERE a.attrelid IN ('songs_song'::regclass, 'songs_artist'::regclass) AND a.attname = 'external_id'"
        )
        assert dict(cursor.fetchall()) == {"songs_song": "C", "songs_artist": "C"}


def test_a_failure_while_staging_stores_nothing(catalog_csv, monkeypatch, seeded):
    """On Postgres blocks are written by a thread beside the reader: its error
    ends the import (failed, with the reason) and nothing is merged."""
    import pyarrow.csv as pacsv

    _require_postgres()
    calls = []

    def broken_write(*args, **kwargs):
        calls.append(1)
        raise OSError("disk full while staging")

    monkeypatch.setattr(pacsv, "write_csv", broken_write)
    job = run_import(catalog_csv(flagship_rows(30, start=100)))
    assert calls and job.status == "failed" and "disk full while staging" in job.error
    assert snapshot() == seeded
