"""Catalog services: importing CSV files into the song catalog.

An import runs in two steps so that the catalog only ever changes in one
short transaction:
1. stream the file into a per-job staging table (one COPY on Postgres, an
   executemany per block on SQLite); on Postgres the job's progress goes
   through a second connection, so other processes see it as it grows;
2. merge the staging table into artists and songs with two
   `INSERT … SELECT … ON CONFLICT DO UPDATE` statements in one transaction.
A whole-file rejection before or during step 2 leaves the catalog as it was.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime as dt
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.utils import timezone

from .background import Heartbeat, broker_check, session_advisory_lock
from .features import FEATURE_NAMES
from .models import Artist, ImportJob, Song
from .signals import songs_imported

if TYPE_CHECKING:
    import pyarrow as pa

    from .importing import Batch, FileInfo

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[ImportJob], None]

# Serialises imports and label write-back (clustering.services) on Postgres.
CATALOG_LOCK_ID = 7_240_001

_STAGE_TYPES = {
    "line": "integer",
    "artist_followers": "bigint",
    "artist_popularity": "integer",
    "popularity": "integer",
    "explicit": "boolean",
    "release_date": "date",
    "release_year": "integer",
    "duration_ms": "integer",
    "key": "integer",
    "mode": "integer",
    "time_signature": "integer",
    "song_hash": "bigint",
    "artist_hash": "bigint",
    **{name: "double precision" for name in FEATURE_NAMES if name != "duration_ms"},
}
# Staged beside the file's columns: the rows' content hashes (songs.importing.content_hashes).
HASH_COLUMNS = ("song_hash", "artist_hash")


def _stage_columns() -> tuple[str, ...]:
    from .importing import STAGE_COLUMNS

    return (*STAGE_COLUMNS, *HASH_COLUMNS)


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


class _Stage:
    """The per-job staging table."""

    WRITE_AHEAD = 2  # blocks (4 MB of CSV each) queued for the COPY thread

    def __init__(self, job_id: int):
        self.table = f"songs_import_stage_{int(job_id)}"

    def create(self) -> None:
        pg = _is_postgres()
        cols = ", ".join(f"{c} {_STAGE_TYPES.get(c, 'text')}" for c in _stage_columns())
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            # Unlogged: the staging data is rebuilt from the file if lost.
            cursor.execute(f"CREATE {'UNLOGGED ' if pg else ''}TABLE {self.table} ({cols})")

    @property
    def artists(self) -> str:
        """The lines whose artist columns the merge writes (one per artist)."""
        return f"{self.table}_artists"

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
            cursor.execute(f"DROP TABLE IF EXISTS {self.artists}")

    def artist_lines_write(self, lines: np.ndarray) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.artists}")
            cursor.execute(
                f"CREATE {'UNLOGGED ' if _is_postgres() else ''}TABLE {self.artists} (line bigint PRIMARY KEY)"
            )
            if not len(lines):
                return
            if _is_postgres():
                with cursor.copy(f"COPY {self.artists} (line) FROM STDIN") as copy:
                    copy.write("\n".join(map(str, lines.tolist())) + "\n")
            else:
                cursor.executemany(f"INSERT INTO {self.artists} (line) VALUES (%s)", [(x,) for x in lines.tolist()])

    @contextlib.contextmanager
    def writer(self, prepare: Callable[[Batch], pa.Table]) -> Iterator[Callable[[Batch], None]]:
        """A function that appends a Batch to the staging table: the rows and
        hash columns `prepare` returns for it (in the writing thread).

        On Postgres the whole file goes through one COPY, so the server
        ingests a block while Arrow parses the next (two cores at work). The
        blocks are written as CSV and sent by a thread of their own (Arrow's
        writer and libpq let go of the GIL), while this one parses and
        checks the next: a third of the Python side at 1M rows. At most
        WRITE_AHEAD blocks wait, in order; the first error of the thread is
        raised here, at the next block or at the end.
        """
        import pyarrow.csv as pacsv

        stage_columns = _stage_columns()
        columns = ", ".join(stage_columns)
        if _is_postgres():
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY {self.table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
                concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-copy") as pool,
            ):
                pending: collections.deque[concurrent.futures.Future] = collections.deque()

                def send(batch: Batch) -> None:
                    # Hashing is NumPy work that lets go of the GIL too.
                    table = prepare(batch)
                    if not table.num_rows:
                        return
                    # Arrow writes the CSV in C++; nulls become empty
                    # unquoted fields, which COPY reads as NULL.
                    buf = io.BytesIO()
                    pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(include_header=False))
                    copy.write(buf.getbuffer())

                def write(batch: Batch) -> None:
                    while pending and (pending[0].done() or len(pending) >= self.WRITE_AHEAD):
                        pending.popleft().result()
                    pending.append(pool.submit(send, batch))

                try:
                    yield write
                except BaseException:
                    # The caller failed: nothing more is sent, and the thread
                    # is done with the connection before COPY is aborted.
                    for future in pending:
                        future.cancel()
                    concurrent.futures.wait(pending)
                    raise
                while pending:  # every block sent (or the thread's error raised) before COPY ends
                    pending.popleft().result()
        else:
            placeholders = ", ".join(["%s"] * len(stage_columns))

            def write(batch: Batch) -> None:
                table = prepare(batch)
                if not table.num_rows:
                    return
                values = [table.column(c).to_pylist() for c in stage_columns]
                rows = [tuple(v.isoformat() if isinstance(v, dt.date) else v for v in row) for row in zip(*values)]
                with connection.cursor() as cursor:
                    cursor.executemany(f"INSERT INTO {self.table} ({columns}) VALUES ({placeholders})", rows)

            yield write


def _upsert_sql(
    *,
    table: str,
    stage: str,
    columns: list[tuple[str, str]],
    key: str,
    dedupe: bool,
    join: str = "",
    source: str | None = None,
    conflicts: bool = True,
) -> str:
    """INSERT … SELECT from the staging table … ON CONFLICT DO UPDATE.

    `columns` pairs each target column with its staged expression (`s.<col>`,
    `a.id`); `content_hash` among them is the row's hash, which is written
    whenever it differs but does not by itself make the row changed: such a
    row keeps its updated_at (a row edited back to the file's values, or
    stored before hashes existed, is not counted as updated). With `dedupe`,
    only the last staged row per `key` is taken (duplicate ids within a
    file: the last one wins), found by a hash aggregate rather than a sort;
    `source` replaces the staging table as the rows' source. Rows identical
    to what is stored are filtered out before the upsert: ON CONFLICT would
    lock (and log) every conflicting row before looking at its WHERE clause.
    Rows come sorted by key, which keeps the unique index's pages hot; on
    Postgres bytewise (the public ids' collation, migration 0008). With
    ``conflicts=False`` (the table held no row when the merge began) it is a
    plain INSERT: ON CONFLICT's speculative insertion was a third of a first
    import's song merge.
    """
    target = ", ".join(c for c, _ in columns)
    exprs = ", ".join(e for _, e in columns)
    compared = [(c, e) for c, e in columns if c not in ("external_id", "created_at", "updated_at", "content_hash")]
    hashed = [(c, e) for c, e in columns if c == "content_hash"]
    changed = " OR ".join(f"{table}.{c} IS DISTINCT FROM excluded.{c}" for c, _ in compared)
    updates = ", ".join(f"{c} = excluded.{c}" for c, _ in [*compared, *hashed])
    updates += f", updated_at = CASE WHEN {changed} THEN excluded.updated_at ELSE {table}.updated_at END"
    where = " OR ".join([changed, *(f"{table}.{c} IS DISTINCT FROM excluded.{c}" for c, _ in hashed)])
    identical = " AND ".join(f"t.{c} IS NOT DISTINCT FROM {e}" for c, e in [*compared, *hashed])
    if source is not None:
        pass
    elif dedupe:
        source = (
            f"(SELECT {key}, max(line) AS line FROM {stage} GROUP BY {key}) m "
            f"JOIN {stage} s ON s.{key} = m.{key} AND s.line = m.line"
        )
    else:
        source = f"{stage} s"
    collate = ' COLLATE "C"' if _is_postgres() else ""
    order = f"ORDER BY s.{key}{collate}"
    if not conflicts:
        return f"INSERT INTO {table} ({target}) SELECT {exprs} FROM {source} {join} {order}"
    return (
        f"INSERT INTO {table} ({target}) SELECT {exprs} FROM {source} {join} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.external_id = s.{key} AND {identical}) "
        f"{order} "
        f"ON CONFLICT (external_id) DO UPDATE SET {updates} WHERE {where}"
    )


# A load this large (and twice the catalog) rebuilds the title, genre and
# artist indexes instead of inserting into them: at 1M new songs, maintaining
# them row by row costs ~2x the whole rest of the merge (docs/PERFORMANCE.md).
SEARCH_INDEX_REBUILD_ROWS = 100_000
# The title indexes (search and sort), the genre index and the artist index, as their migrations
# (0001, 0002, 0003, 0005) create them. `{concurrently}` is empty inside a transaction.
BULK_REBUILT_INDEXES = {
    "song_name_trgm": "CREATE INDEX {concurrently} IF NOT EXISTS song_name_trgm ON songs_song "
    "USING gin (upper((name)::text) gin_trgm_ops)",
    "song_name_id": "CREATE INDEX {concurrently} IF NOT EXISTS song_name_id ON songs_song USING btree (name, id)",
    "song_genres_gin": "CREATE INDEX {concurrently} IF NOT EXISTS song_genres_gin ON songs_song "
    "USING gin (genres jsonb_path_ops)",
    # Song.artist's index (Django's name for it): random inserts, ~1.5 s at 1M
    # maintained against ~0.5 s built.
    "songs_song_artist_id_5a5484fb": "CREATE INDEX {concurrently} IF NOT EXISTS songs_song_artist_id_5a5484fb "
    "ON songs_song USING btree (artist_id)",
}


def _can_rebuild_concurrently() -> bool:
    # DROP/CREATE INDEX CONCURRENTLY cannot run inside a transaction block
    # (a caller's atomic, a test's): such a load maintains the indexes instead.
    return _is_postgres() and not connection.in_atomic_block


@contextlib.contextmanager
def _catalog_session_lock() -> Iterator[None]:
    """The catalog lock for a whole bulk load (drop, merge, and any repair),
    not only its merge transaction (which takes it again: it is re-entrant)."""
    if not _can_rebuild_concurrently():
        yield
        return
    with session_advisory_lock(CATALOG_LOCK_ID, what="catalog lock"):
        yield


def catalog_indexes_ensure() -> list[str]:
    """Re-create, concurrently, any rebuilt index that is missing or invalid
    (a bulk load whose process died between dropping and re-creating them).
    Postgres only, outside a transaction, under the catalog lock (callers take
    it). The names re-created; [] when all are there, which is one query."""
    if not _can_rebuild_concurrently():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND c.relname = ANY(%s)",
            [Song._meta.db_table, list(BULK_REBUILT_INDEXES)],
        )
        valid = dict(cursor.fetchall())
        repaired = []
        for name, definition in BULK_REBUILT_INDEXES.items():
            if valid.get(name) is True:
                continue
            if name in valid:  # an interrupted CREATE INDEX CONCURRENTLY leaves an invalid index
                cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
            logger.warning("re-creating the index %s of the songs table", name)
            cursor.execute(definition.format(concurrently="CONCURRENTLY"))
            repaired.append(name)
    return repaired


def catalog_indexes_repair() -> list[str]:
    """:func:`catalog_indexes_ensure` unless an import holds the catalog lock
    (the sweeper's call: it never waits behind a load)."""
    if not _can_rebuild_concurrently():
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [CATALOG_LOCK_ID])
        if not cursor.fetchone()[0]:
            return []
    try:
        return catalog_indexes_ensure()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [CATALOG_LOCK_ID])


def _search_indexes_drop_for_bulk(*, rows: int) -> list[str]:
    """Drop the title, genre and artist indexes of the songs table before a
    bulk merge when rebuilding them is cheaper than maintaining them; return
    their names.

    Dropped CONCURRENTLY, outside the merge transaction: a plain DROP INDEX
    holds an ACCESS EXCLUSIVE lock to the commit, and every read of songs
    would wait behind it for the whole merge. Readers meanwhile run without
    these indexes (title searches scan the table); the merge re-creates them
    on the new rows before it commits (:func:`_merge`), under a SHARE lock
    that readers pass.
    """
    if not _can_rebuild_concurrently():
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Song._meta.db_table])
        existing = max(0, int(cursor.fetchone()[0]))  # -1 before the first ANALYZE
        # Judged on the songs already there (an unchanged re-import must not
        # rebuild): only a load at least twice the catalog's size.
        if rows < SEARCH_INDEX_REBUILD_ROWS or rows < 2 * existing:
            return []
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)",
            [Song._meta.db_table, list(BULK_REBUILT_INDEXES)],
        )
        found = [name for (name,) in cursor.fetchall()]
        for name in found:
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    return found


def _catalog_changed_since(moment: dt.datetime, *, job: ImportJob) -> bool:
    """Whether another import may have merged since `moment` (conservative:
    one merging now, or that ended since). Asked under the catalog lock."""
    others = ImportJob.objects.exclude(pk=job.pk)
    return others.filter(
        models.Q(finished_at__gte=moment) | models.Q(status=ImportJob.Status.RUNNING, stage="merging")
    ).exists()


class _HashesLoader:
    """The catalog's stored hashes, read in a thread on a connection of its
    own on Postgres outside a transaction (a transaction's rows are its own:
    then, and on SQLite, read in place when asked)."""

    def __init__(self):
        self.pool = None
        if _is_postgres() and not connection.in_atomic_block:
            self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashes-load")
            self.future = self.pool.submit(self._load)

    @staticmethod
    def _load() -> tuple[np.ndarray, np.ndarray]:
        side = connections.create_connection(DEFAULT_DB_ALIAS)  # a connection belongs to its thread
        try:
            return _stored_hashes(Song, side), _stored_hashes(Artist, side)
        finally:
            side.close()

    def __enter__(self):
        return self

    def songs(self) -> np.ndarray:
        return self.future.result()[0] if self.pool else _stored_hashes(Song)

    def artists(self) -> np.ndarray:
        return self.future.result()[1] if self.pool else _stored_hashes(Artist)

    def __exit__(self, *exc) -> None:
        if self.pool:
            self.pool.shutdown(wait=True)


def _stored_hashes(model: type[models.Model], conn=None) -> np.ndarray:
    """The content hashes the catalog holds for `model`'s rows, sorted (int64)."""
    table = model._meta.db_table
    sql = f"SELECT content_hash FROM {table} WHERE content_hash IS NOT NULL"
    conn = conn or connection
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            # Binary COPY: 14 bytes a row (field count, length, value), no Python object per row.
            buf = bytearray()
            with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
                for block in copy:
                    buf += block
            rows = np.dtype([("fields", ">i2"), ("size", ">i4"), ("value", ">i8")])
            count = max(0, (len(buf) - 21) // rows.itemsize)  # 19 bytes of header, 2 of trailer
            hashes = np.frombuffer(bytes(buf), dtype=rows, count=count, offset=19)["value"].astype(np.int64)
        else:
            cursor.execute(sql)
            hashes = np.fromiter((h for (h,) in cursor.fetchall()), dtype=np.int64)
    hashes.sort()
    return hashes


def _isin_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(sorted_set, values).clip(max=len(sorted_set) - 1)
    return sorted_set[at] == values


class _Plan:
    """Which rows of a file the import stages, batch by batch.

    A row is staged when no song of the catalog holds its content hash (its
    song's and its artist's columns), or in a second pass when its line is
    in `only_lines`. Beside that it keeps, per row, the hash of its song id
    (rows sharing an id must all be staged, so that the merge can take the
    last one) and, per artist, the line and the artist columns' hash of its
    last row (the one whose columns the artist gets): 17 bytes a row and 3
    values an artist.
    """

    def __init__(self, *, song_hashes: np.ndarray, artist_hashes: np.ndarray):
        self.song_hashes = song_hashes
        self.artist_hashes = artist_hashes
        self.only_lines: np.ndarray | None = None
        self.lines: list[np.ndarray] = []
        self.id_hashes: list[np.ndarray] = []
        self.staged: list[np.ndarray] = []
        self.artists: list = []  # Arrow tables: artist id, last line, its artist hash
        self.artist_rows = self.compacted = 0
        self.rows_staged = 0

    def prepare(self, batch: Batch) -> pa.Table:
        import pyarrow as pa

        from .importing import ARTIST_HASH_COLUMNS, ROW_HASH_COLUMNS, column_hashes, content_hashes

        table = batch.table
        cache: dict = {}
        song = content_hashes(table, ROW_HASH_COLUMNS, cache=cache)
        artist = content_hashes(table, ARTIST_HASH_COLUMNS, cache=cache)
        lines = table.column("line").to_numpy()
        if self.only_lines is not None:
            stage = _isin_sorted(lines, self.only_lines)
        else:
            stage = ~_isin_sorted(song, self.song_hashes)
            self.lines.append(lines)
            self.id_hashes.append(column_hashes(table, "external_id", cache=cache))
            self.staged.append(stage)
            self._artists_add(table.column("artist_external_id"), lines, artist)
        out = table.append_column("song_hash", pa.array(song)).append_column("artist_hash", pa.array(artist))
        if not stage.all():
            out = out.filter(pa.array(stage))
        self.rows_staged += out.num_rows
        return out

    def _artists_add(self, ids, lines: np.ndarray, hashes: np.ndarray) -> None:
        import pyarrow as pa

        self.artists.append(_last_per_artist(pa.table({"artist": ids, "line": lines, "hash": hashes})))
        self.artist_rows += self.artists[-1].num_rows
        if self.artist_rows > 2 * self.compacted + 200_000:  # memory bounded by ~3x the artists seen
            self.artists = [_last_per_artist(pa.concat_tables(self.artists))]
            self.artist_rows = self.compacted = self.artists[0].num_rows

    def duplicate_lines(self) -> tuple[bool, np.ndarray]:
        """(whether the file may repeat a song id, the lines of rows sharing an
        id hash that were not staged): those go in a second pass."""
        if not self.id_hashes:
            return False, np.empty(0, np.int64)
        ids = np.concatenate(self.id_hashes)
        order = np.sort(ids)
        repeated = order[1:][order[1:] == order[:-1]]
        if not len(repeated):
            return False, np.empty(0, np.int64)
        in_groups = _isin_sorted(ids, np.unique(repeated))
        missing = in_groups & ~np.concatenate(self.staged)
        return True, np.sort(np.concatenate(self.lines)[missing])

    def mark_staged(self, lines: np.ndarray) -> None:
        """Lines a second pass staged."""
        for batch_lines, staged in zip(self.lines, self.staged):
            staged |= _isin_sorted(batch_lines, lines)

    def unstaged_lines(self) -> np.ndarray:
        if not self.lines:
            return np.empty(0, np.int64)
        return np.sort(np.concatenate(self.lines)[~np.concatenate(self.staged)])

    def artist_lines(self, *, every: bool = False) -> np.ndarray:
        """The last line of each artist whose columns there the catalog does
        not hold (`every`: of each artist of the file)."""
        import pyarrow as pa

        if not self.artists:
            return np.empty(0, np.int64)
        last = _last_per_artist(pa.concat_tables(self.artists))
        lines = last.column("line").to_numpy()
        if not every:
            lines = lines[~_isin_sorted(last.column("hash").to_numpy(), self.artist_hashes)]
        return np.sort(lines)


def _last_per_artist(table):
    """One row per artist: its last line (rows come in file order) and that row's hash."""
    grouped = table.group_by("artist", use_threads=False).aggregate([("line", "last"), ("hash", "last")])
    return grouped.select(["artist", "line_last", "hash_last"]).rename_columns(["artist", "line", "hash"])


def _table_empty(cursor, table: str) -> bool:
    cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {table})")
    return bool(cursor.fetchone()[0])


def _merge_into(cursor, table: str, statement: Callable[[bool], str], params: list) -> None:
    """Run the merge statement ``statement(conflicts)`` into ``table``.

    Into a table with no row (a first import) it is a plain INSERT, in a
    savepoint: should another writer add a row with one of the same ids
    meanwhile, the INSERT fails on the unique index and the full upsert runs
    instead, which merges it. The statement's result is left on ``cursor``.
    """
    if _table_empty(cursor, table):
        try:
            with transaction.atomic():
                cursor.execute(statement(False), params)
            return
        except IntegrityError as exc:
            logger.info("%s gained rows during a first import: merging them (%s)", table, exc)
    cursor.execute(statement(True), params)


def _merge(stage: _Stage, *, staged: int, rows: int, dedupe: bool, rebuild: list[str] = ()) -> dict[str, int]:
    """Merge the staging table into the catalog; the caller holds a transaction.

    `staged` rows wait in the staging table: the file's rows whose content
    hashes the catalog did not hold (every row of a first import), all of
    them when it is a first import. With `dedupe` the file may repeat an id:
    every row of such ids is staged, and the last one wins. `rows` is the
    number of the file's good rows. Artists are written from the lines listed
    in ``stage.artists``: the last row of each artist whose columns the
    catalog does not hold. `rebuild` names indexes dropped for this load:
    they are created again on the merged rows before the commit, so that the
    new songs become visible with their indexes.
    """
    pg = _is_postgres()
    json_cast = "::jsonb" if pg else ""
    table = stage.table
    # Every row this merge creates or changes gets this updated_at (songs_imported finds them by it).
    stamp = timezone.now()
    now = connection.ops.adapt_datetimefield_value(stamp)
    with connection.cursor() as cursor:
        if pg:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CATALOG_LOCK_ID])
            # Hashing and sorting a million staged rows wants more than the default 4 MB.
            cursor.execute("SET LOCAL work_mem = '512MB'")
        if not pg:
            # SQLite would join the dedup aggregate back to the staging table
            # by nested loops; Postgres hashes.
            cursor.execute(f"CREATE INDEX {table}_line ON {table} (line)")
            if dedupe:
                cursor.execute(f"CREATE INDEX {table}_song ON {table} (external_id, line)")
        if not pg:
            cursor.execute(f"SELECT count(*) FROM {Song._meta.db_table}")
            before = cursor.fetchone()[0]

        artist_cols = [
            ("external_id", "s.artist_external_id"),
            ("name", "s.artist_name"),
            ("genres", f"s.artist_genres{json_cast}"),
            ("followers", "s.artist_followers"),
            ("popularity", "s.artist_popularity"),
            ("content_hash", "s.artist_hash"),
            ("created_at", "%s"),
            ("updated_at", "%s"),
        ]
        t0 = time.perf_counter()
        _merge_into(
            cursor,
            Artist._meta.db_table,
            lambda conflicts: _upsert_sql(
                table=Artist._meta.db_table,
                stage=table,
                columns=artist_cols,
                key="artist_external_id",
                dedupe=False,
                source=f"{stage.artists} l JOIN {table} s ON s.line = l.line",
                conflicts=conflicts,
            ),
            [now, now],
        )
        t1 = time.perf_counter()
        song_cols = [
            ("external_id", "s.external_id"),
            ("name", "s.name"),
            ("album", "s.album"),
            ("artist_id", "a.id"),
            ("genres", f"s.genres{json_cast}"),
            ("popularity", "s.popularity"),
            ("explicit", "s.explicit"),
            ("release_date", "s.release_date"),
            ("release_year", "s.release_year"),
            *[(name, f"s.{name}") for name in FEATURE_NAMES],
            ("key", "s.key"),
            ("mode", "s.mode"),
            ("time_signature", "s.time_signature"),
            ("content_hash", "s.song_hash"),
            ("created_at", "%s"),
            ("updated_at", "%s"),
        ]

        def upsert(conflicts: bool) -> str:
            return _upsert_sql(
                table=Song._meta.db_table,
                stage=table,
                columns=song_cols,
                key="external_id",
                dedupe=dedupe,
                join=f"JOIN {Artist._meta.db_table} a ON a.external_id = s.artist_external_id",
                conflicts=conflicts,
            )

        duplicates = 0
        if dedupe:  # every row of a repeated id is staged: the extra ones are the file's duplicates
            cursor.execute(f"SELECT count(*) - count(DISTINCT external_id) FROM {table}")
            duplicates = cursor.fetchone()[0]
        if pg:
            # xmax = 0 marks a freshly inserted row, updated_at = this merge's
            # stamp a created or changed one (a row whose hash alone was
            # written keeps its own): counts without scanning the table.
            _merge_into(
                cursor,
                Song._meta.db_table,
                lambda conflicts: (
                    f"WITH w AS ({upsert(conflicts)} RETURNING (xmax = 0) AS created, (updated_at = %s) AS changed) "
                    "SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE changed AND NOT created) FROM w"
                ),
                [now, now, now],
            )
            created, updated = cursor.fetchone()
        else:
            _merge_into(cursor, Song._meta.db_table, upsert, [now, now])
            cursor.execute(f"SELECT count(*) FROM {Song._meta.db_table}")
            created = cursor.fetchone()[0] - before
            cursor.execute(f"SELECT count(*) FROM {Song._meta.db_table} WHERE updated_at = %s", [now])
            updated = cursor.fetchone()[0] - created
        if rebuild:
            # Deferred foreign-key checks of the inserted rows run now rather
            # than at commit: Postgres builds no index on a table with pending ones.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # A plain CREATE INDEX takes a SHARE lock: reads go on, writes wait.
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        t2 = time.perf_counter()
        for name in rebuild:
            cursor.execute(BULK_REBUILT_INDEXES[name].format(concurrently=""))
        t3 = time.perf_counter()
    distinct = rows - duplicates
    return {
        "created": created,
        "updated": updated,
        "unchanged": distinct - created - updated,
        "duplicates": duplicates,
        "changed_at": stamp,
        "timings": {"merge_artists": t1 - t0, "merge_songs": t2 - t1, "merge_index_build": t3 - t2},
    }


class ChangedSongIds:
    """The primary keys of the songs a merge created or changed (stamped
    ``changed_at``), ascending, read from the database the first time a
    receiver iterates them: a receiver with nothing to do (no active run)
    reads none (10M ids took 8 s of a first import)."""

    def __init__(self, changed_at):
        self.changed_at = changed_at
        self._ids: list[int] | None = None

    def _read(self) -> list[int]:
        if self._ids is None:
            self._ids = list(
                Song.objects.filter(updated_at=self.changed_at).order_by("id").values_list("id", flat=True)
            )
        return self._ids

    def __iter__(self) -> Iterator[int]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def _songs_imported_send(*, job: ImportJob, changed_at) -> None:
    """Tell the apps built on the catalog which songs the merge (committed)
    created or changed: the engine labels them with its active model. A
    failing receiver is logged; the import stands."""
    if not songs_imported.has_listeners(sender=ImportJob):
        return
    ids = ChangedSongIds(changed_at)
    for receiver, result in songs_imported.send_robust(sender=ImportJob, job=job, song_ids=ids):
        if isinstance(result, Exception):
            logger.error("songs_imported receiver %r failed: %r", receiver, result, exc_info=result)


def import_job_create(*, file_name: str, fmt: str = "auto", user=None, uploaded_file=None) -> ImportJob:
    job = ImportJob(file_name=file_name[:512], format=fmt if fmt != "auto" else "", created_by=user)
    if uploaded_file is not None:
        job.file.save(Path(file_name).name, uploaded_file, save=False)
    try:
        job.save()
    except BaseException:
        if job.file:
            job.file.delete(save=False)  # no row, no file
        raise
    return job


# Uploads no job owns (a job row deleted, or one whose insert failed after its
# file was written) go once they are this old: a file younger than this may
# belong to a job whose row is not committed yet.
ORPHAN_UPLOAD_GRACE_SECONDS = 3600
UPLOADS_FOLDER = "imports"  # ImportJob.file's upload_to, under MEDIA_ROOT


def import_job_upload_remove(*, job: ImportJob) -> bool:
    """Remove a job's uploaded file and forget it on the row; True if there was one."""
    if not job.file:
        return False
    name = job.file.name
    job.file.delete(save=False)
    ImportJob.objects.filter(pk=job.pk, file=name).update(file="")
    return True


def import_uploads_prune(*, now: dt.datetime | None = None) -> int:
    """Remove the uploaded files of imports that ended (succeeded or failed)
    more than IMPORT_UPLOAD_KEEP_DAYS ago (0: all of them), and uploads no
    job owns. Queued and running jobs keep theirs. The number of files removed.

    Runs after every import and in the workers' sweeper; a file already gone
    (another worker was first) is not an error.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.IMPORT_UPLOAD_KEEP_DAYS)
    ended = ImportJob.objects.filter(status__in=[ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED]).exclude(file="")
    removed = 0
    for job in ended.filter(
        models.Q(finished_at__lte=cutoff) | models.Q(finished_at__isnull=True, created_at__lte=cutoff)
    ):
        try:
            removed += import_job_upload_remove(job=job)
        except OSError:
            logger.exception("could not remove the upload of import job %s", job.pk)
    removed += _orphan_uploads_remove(now=now)
    if removed:
        logger.info("removed %s uploaded file(s) of finished imports", removed)
    return removed


def _orphan_uploads_remove(*, now: dt.datetime) -> int:
    folder = Path(settings.MEDIA_ROOT) / UPLOADS_FOLDER
    if not folder.is_dir():
        return 0
    media = Path(settings.MEDIA_ROOT)
    files = {p.relative_to(media).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    if not files:
        return 0
    owned = set(ImportJob.objects.filter(file__in=list(files)).values_list("file", flat=True))
    grace = now.timestamp() - ORPHAN_UPLOAD_GRACE_SECONDS
    removed = 0
    for name, path in files.items():
        try:
            if name not in owned and path.stat().st_mtime < grace:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
        except OSError:
            logger.exception("could not remove the orphan upload %s", name)
    return removed


def catalog_analyze() -> None:
    """Fresh planner statistics for the songs table after a bulk write.

    Autovacuum may be off or minutes late; until it runs, Postgres guesses
    row counts (1,552 rows for a 350k-song cluster was seen) and a cluster
    page took 220 ms instead of 9. Outside a transaction only: ANALYZE reads a
    sample of 30k rows, ~0.3 s at 1M songs.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Song._meta.db_table}")


def import_job_submit(*, file_name: str, uploaded_file, fmt: str = "auto", user=None) -> ImportJob:
    """Store an uploaded CSV as a queued job and hand it to a worker once the
    job row is committed (the admin upload and POST /api/imports/).

    :class:`~songs.background.BrokerUnavailable` when the broker is down:
    nothing is stored. A send that still fails after the commit is logged;
    the sweeper re-sends it (:func:`import_jobs_resend`).
    """
    broker_check()
    with transaction.atomic():
        job = import_job_create(file_name=file_name, fmt=fmt, user=user, uploaded_file=uploaded_file)
        ImportJob.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
        transaction.on_commit(lambda: _import_job_send(job.pk, fmt), robust=True)
    return job


def _import_job_send(job_id: int, fmt: str) -> None:
    from .tasks import import_songs_task  # the task module imports this one

    import_songs_task.delay(job_id, fmt)


def import_job_claim(*, job_id: int) -> bool:
    """Move a queued job to running; False when someone else has it."""
    now = timezone.now()
    return bool(
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
            status=ImportJob.Status.RUNNING, started_at=now, heartbeat_at=now, stage="inspecting"
        )
    )


def import_jobs_fail_stale(*, older_than: float | None = None) -> int:
    """Fail running jobs whose worker stopped sending heartbeats (a killed
    worker, a database that went away mid-merge), drop the staging tables no
    running job owns and prune uploaded files (:func:`import_uploads_prune`).
    The number of jobs failed."""
    seconds = settings.IMPORT_STALE_SECONDS if older_than is None else older_than
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=seconds)
    stale = ImportJob.objects.filter(status=ImportJob.Status.RUNNING).filter(
        models.Q(heartbeat_at__lt=cutoff) | models.Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    failed = stale.update(
        status=ImportJob.Status.FAILED,
        stage="error",
        error=f"The worker stopped responding (no heartbeat for {seconds:.0f} s); nothing of this import was "
        "merged unless it says so above. Import the file again.",
        finished_at=now,
    )
    import_stage_tables_drop_orphans()
    try:
        catalog_indexes_repair()
    except Exception:
        logger.exception("could not check the indexes of the songs table")
    try:  # the files of failed (and finished) jobs go too: the sweeper calls this every few seconds
        import_uploads_prune(now=now)
    except Exception:
        logger.exception("could not prune uploaded files")
    return failed


def import_stage_tables_drop_orphans() -> list[str]:
    """Drop every ``songs_import_stage_<id>`` table (and its ``_artists``
    list) whose job is not running."""
    prefix = "songs_import_stage_"
    with connection.cursor() as cursor:
        tables = [t for t in connection.introspection.table_names(cursor) if t.startswith(prefix)]
    suffixes = [t[len(prefix) :].removesuffix("_artists") for t in tables]
    ids = {int(suffix) for suffix in suffixes if suffix.isdigit()}
    running = set(ImportJob.objects.filter(pk__in=ids, status=ImportJob.Status.RUNNING).values_list("pk", flat=True))
    dropped = []
    for job_id in sorted(ids - running):
        try:
            _Stage(job_id).drop()
        except Exception:
            logger.exception("could not drop the staging table of import job %s", job_id)
        else:
            dropped.append(f"{prefix}{job_id}")
    return dropped


def import_jobs_resend(*, older_than: float | None = None) -> list[int]:
    """Send again the task of every job still queued ``older_than`` seconds
    after its last send (its message was lost with the broker). A duplicate
    message is a no-op: the claim is conditional. The ids re-sent."""
    seconds = settings.QUEUED_RESEND_SECONDS if older_than is None else older_than
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=seconds)
    resent = []
    for job in ImportJob.objects.filter(status=ImportJob.Status.QUEUED, file__gt="").filter(
        models.Q(enqueued_at__lt=cutoff) | models.Q(enqueued_at__isnull=True, created_at__lt=cutoff)
    ):
        # Claim the re-send itself, so that two sweepers send it once.
        if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.QUEUED, enqueued_at=job.enqueued_at).update(
            enqueued_at=now
        ):
            logger.warning("import job %s is still queued; sending its task again", job.pk)
            _import_job_send(job.pk, job.format or "auto")
            resent.append(job.pk)
    return resent


def import_job_fail(*, job: ImportJob, error: str) -> None:
    job.status, job.stage, job.error, job.finished_at = ImportJob.Status.FAILED, "error", error, timezone.now()
    job.save(update_fields=["status", "stage", "error", "finished_at"])


def import_job_run(
    *,
    job: ImportJob,
    path: Path,
    fmt: str = "auto",
    max_rejected_share: float | None = None,
    progress: ProgressCallback | None = None,
) -> ImportJob:
    """Import `path` for a claimed (running) job; the job row records the outcome.

    Never raises for a bad file: the job ends failed with the reason.
    """
    # The reader (and pyarrow) load where files are imported, not in every web process.
    from .importing import CatalogReader, ImportRejected, file_inspect

    share_limit = settings.IMPORT_MAX_REJECTED_SHARE if max_rejected_share is None else max_rejected_share
    timings: dict[str, float] = {}
    stage = _Stage(job.pk)
    job.status = ImportJob.Status.RUNNING
    job.started_at = job.started_at or timezone.now()
    t0 = time.perf_counter()
    reporter = _ProgressReporter(job, progress)
    # A merge is one long statement: the heartbeat goes on beside it.
    heartbeat = Heartbeat(ImportJob._meta.db_table, job.pk).__enter__()
    try:
        # The hashes of what the catalog holds, read before the file: a row
        # whose hash is among them is not staged (an unchanged re-import
        # stages nothing). An import that merges in between is caught under
        # the catalog lock below. On Postgres they are read on a connection
        # of their own while the file is inspected (a scan of the songs table
        # and a pass over the file's bytes: both let go of the GIL).
        snapshot_at = timezone.now()
        with _HashesLoader() as hashes:
            info: FileInfo = file_inspect(Path(path))
            job.sha256, job.size_bytes, job.encoding = info.sha256, info.size, info.encoding
            job.rows_total_estimate = max(info.line_count - 1, 0)
            timings["inspect"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            plan = _Plan(song_hashes=hashes.songs(), artist_hashes=hashes.artists())
            timings["hashes_wait"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        reader = CatalogReader(Path(path), info, fmt=fmt)
        stage.create()
        rejected_sample: list[dict] = []
        rows_read = rejected = good = 0
        job.stage = "reading"
        # atomic: a COPY aborted by a rejected file must not poison a caller's
        # transaction (a savepoint there; one short transaction otherwise).
        with transaction.atomic(), stage.writer(plan.prepare) as write_batch:
            for batch in reader.batches():
                job.format = reader.format
                write_batch(batch)
                good += len(batch)
                rows_read += batch.rows_read
                rejected += len(batch.rejections)
                room = settings.IMPORT_REJECTED_SAMPLE - len(rejected_sample)
                if room > 0:
                    rejected_sample.extend(r.as_dict() for r in batch.rejections[:room])
                job.rows_read, job.rows_rejected, job.rejected_rows = rows_read, rejected, rejected_sample
                reporter.report()
        timings["read_and_stage"] = time.perf_counter() - t1

        if rows_read and rejected / rows_read > share_limit:
            first = "; ".join(f"line {r['line']} {r['column']}: {r['reason']}" for r in rejected_sample[:3])
            raise ImportRejected(
                f"{rejected:,} of {rows_read:,} rows ({rejected / rows_read:.0%}) are invalid, more than the "
                f"{share_limit:.0%} allowed; nothing was imported. First problems: {first}."
            )
        if rows_read == rejected:
            raise ImportRejected("No valid row in the file; nothing was imported.")

        def stage_more(lines: np.ndarray) -> None:
            """A second pass over the file staging these lines too (rows it skipped)."""
            if not len(lines):
                return
            t = time.perf_counter()
            plan.only_lines = lines
            with transaction.atomic(), stage.writer(plan.prepare) as write_more:
                for more in CatalogReader(Path(path), info, fmt=fmt).batches():
                    write_more(more)
            plan.only_lines = None
            plan.mark_staged(lines)
            timings["second_pass"] = timings.get("second_pass", 0) + time.perf_counter() - t

        t2 = time.perf_counter()
        job.stage = "merging"
        reporter.report(force=True)
        # Every row of an id the file repeats is staged, so that the merge takes the last one.
        dedupe, repeated = plan.duplicate_lines()
        stage_more(repeated)
        every_artist = False
        with _catalog_session_lock():
            if _catalog_changed_since(snapshot_at, job=job):
                # Another import merged while this one read: what the catalog
                # holds is no longer what the hashes said. Compare every row.
                stage_more(plan.unstaged_lines())
                every_artist = True
            artist_lines = plan.artist_lines(every=every_artist)
            # An artist's last row may be one whose song the catalog holds
            # (rows of an artist that disagree, in another order).
            stage_more(np.intersect1d(artist_lines, plan.unstaged_lines(), assume_unique=True))
            stage.artist_lines_write(artist_lines)
            catalog_indexes_ensure()  # a previous load that died half-way
            t3 = time.perf_counter()
            rebuild = _search_indexes_drop_for_bulk(rows=plan.rows_staged)
            timings["merge_index_drop"] = time.perf_counter() - t3
            try:
                with transaction.atomic():
                    counts = _merge(stage, staged=plan.rows_staged, rows=good, dedupe=dedupe, rebuild=rebuild)
            except BaseException:
                if rebuild:  # the catalog as it was, with its indexes
                    try:
                        catalog_indexes_ensure()
                    except Exception:  # the next import or the sweeper repairs them
                        logger.exception("could not re-create the indexes of the songs table")
                raise
        timings.update(counts.pop("timings"))
        timings["merge"] = time.perf_counter() - t2  # including the commit
        job.rows_created = counts["created"]
        job.rows_updated = counts["updated"]
        job.rows_unchanged = counts["unchanged"]
        job.rows_duplicate = counts["duplicates"]
        changed_at = counts.pop("changed_at")
        if counts["created"] or counts["updated"]:
            catalog_analyze()
            t3 = time.perf_counter()
            _songs_imported_send(job=job, changed_at=changed_at)
            timings["imported_hooks"] = time.perf_counter() - t3
        job.status = ImportJob.Status.SUCCEEDED
        job.stage = "done"
    except ImportRejected as exc:
        job.status = ImportJob.Status.FAILED
        job.error = str(exc)
        job.stage = "rejected"
    except Exception as exc:  # a crash must still end the job, with its reason
        logger.exception("import job %s crashed", job.pk)
        job.status = ImportJob.Status.FAILED
        job.error = f"Internal error: {exc.__class__.__name__}: {exc}"
        job.stage = "error"
    finally:
        heartbeat.__exit__(None, None, None)
        reporter.close()
        try:
            stage.drop()
        except Exception:  # never mask the import's own outcome
            logger.exception("could not drop %s", stage.table)
    timings["total"] = time.perf_counter() - t0
    job.timings = {k: round(v, 3) for k, v in timings.items()}
    job.finished_at = timezone.now()
    job.save()
    if progress:
        progress(job)
    return job


class _ProgressReporter:
    """Writes a running job's progress to its row, at most twice a second.

    While the staging COPY holds the main connection, Postgres progress goes
    through a second connection of its own.
    """

    FIELDS = (
        "status",
        "stage",
        "format",
        "sha256",
        "size_bytes",
        "encoding",
        "rows_total_estimate",
        "rows_read",
        "rows_rejected",
        "rejected_rows",
        "started_at",
        "heartbeat_at",
    )

    def __init__(self, job: ImportJob, callback: ProgressCallback | None):
        self.job = job
        self.callback = callback
        self.last = 0.0
        self.side = connections.create_connection(DEFAULT_DB_ALIAS) if _is_postgres() else None

    def report(self, *, force: bool = False) -> None:
        if self.callback:
            self.callback(self.job)
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        self.job.heartbeat_at = timezone.now()
        if self.side is None:
            ImportJob.objects.filter(pk=self.job.pk).update(**{f: getattr(self.job, f) for f in self.FIELDS})
            return
        values = [getattr(self.job, f) for f in self.FIELDS]
        values[self.FIELDS.index("rejected_rows")] = json.dumps(self.job.rejected_rows)
        assignments = ", ".join(f"{f} = %s" + ("::jsonb" if f == "rejected_rows" else "") for f in self.FIELDS)
        with self.side.cursor() as cursor:
            cursor.execute(f"UPDATE {ImportJob._meta.db_table} SET {assignments} WHERE id = %s", [*values, self.job.pk])

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def songs_import_file(
    *,
    path: Path,
    fmt: str = "auto",
    user=None,
    max_rejected_share: float | None = None,
    progress: ProgressCallback | None = None,
) -> ImportJob:
    """Create a job for a file on disk and import it in this process."""
    job = import_job_create(file_name=Path(path).name, fmt=fmt, user=user)
    import_job_claim(job_id=job.pk)
    job.refresh_from_db()
    return import_job_run(job=job, path=path, fmt=fmt, max_rejected_share=max_rejected_share, progress=progress)
