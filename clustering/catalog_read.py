"""One read of the catalog per training run, as columns.

A run needs, for every song: its id, the ten features (the fit, the labels,
the similar-song index), and for the index and the clusters' profiles the
artist, year, popularity, key / mode / time signature, title, public id and
genres. :func:`catalog_columns` reads all of them in one statement into
:class:`CatalogColumns`, and the fit, the labels and the index build share it.

On Postgres it is one ``COPY (SELECT … ORDER BY id) TO STDOUT (FORMAT csv)``
read with psycopg 3's ``cursor.copy()`` and parsed by Arrow's CSV reader in
pieces as it arrives: numbers go from Arrow buffers into NumPy arrays and
text stays in Arrow arrays, so no Python object is made per song for any
numeric column. Why CSV for the numbers too, not the binary format (as the
features-only :func:`feature_matrix_binary`): a binary row has a fixed
layout only without text, so the text would need a second statement (a
second scan, and another snapshot unless both share a transaction). Measured
at 1M songs (server side, ``COPY … TO '/dev/null'``, load ~3): every column
as CSV 3.6 s, as binary 2.4 s (the float formatting: ~1 s); two statements,
the id and features then the three text columns, 1.8 s + 1.7 s as CSV. So
one CSV statement costs about what two would, scans once and keeps one
snapshot; client side, the pieces parse in ~1 s in all at 1M. float8
travels as its shortest exact decimal form, which Arrow parses back to the
same double (the tests compare with the binary read, byte for byte).

On SQLite (the embedded default, small catalogs) a chunked cursor fills the
same columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection

from songs.features import FEATURE_NAMES
from songs.models import Artist, Song

from .ml.features import unique_ints

# Optional small integers, read as float64 with NaN for unknown.
OPTIONAL_NUMBERS = ("release_year", "popularity", "key", "mode", "time_signature")
TEXTS = ("external_id", "name", "genres")
# The order of the statement's columns (and of the CSV's).
COLUMNS = ("id", *FEATURE_NAMES, "artist_id", *OPTIONAL_NUMBERS, *TEXTS)
# Arrow's CSV blocks: large enough for its threads, small enough to keep
# the raw text in flight a small part of the result.
BLOCK_BYTES = 8 << 20
PIECE_BYTES = 32 << 20
CHUNK_ROWS = 100_000


@dataclass
class CatalogColumns:
    """Every column a training run reads, aligned by row (songs by id).

    ``ids`` int64 sorted; ``X`` (n, 10) float64 in FEATURE_NAMES order;
    ``artist_id`` int64; ``release_year``, ``popularity``, ``key``,
    ``mode``, ``time_signature`` float64 (NaN when unknown); ``external_id``
    and ``name`` Arrow string arrays; genres as pairs: song row
    ``genre_rows[i]`` carries genre ``genre_names[genre_codes[i]]`` (trimmed,
    lower case; in the songs' order, each list's in its own order).
    """

    ids: np.ndarray
    X: np.ndarray
    artist_id: np.ndarray
    release_year: np.ndarray
    popularity: np.ndarray
    key: np.ndarray
    mode: np.ndarray
    time_signature: np.ndarray
    external_id: pa.Array
    name: pa.Array
    genre_rows: np.ndarray
    genre_codes: np.ndarray
    genre_names: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def genres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, codes, distinct names): what ClusterModel.fit takes."""
        return self.genre_rows, self.genre_codes, self.genre_names

    def texts_release(self) -> None:
        """Let the titles and public ids go (~100 MB per 1M songs) once the
        index has keyed them; the fit never reads them."""
        self.name = self.external_id = pa.array([], pa.string())
        pa.default_memory_pool().release_unused()

    def features_take(self) -> np.ndarray:
        """Hand the feature matrix to its last reader (the index build, which
        lets it go once its attributes are written): ~80 MB per 1M songs the
        end of a run no longer holds. The columns keep an empty matrix."""
        X, self.X = self.X, np.empty((0, len(FEATURE_NAMES)))
        return X

    @classmethod
    def empty(cls) -> CatalogColumns:
        none = np.empty(0)
        return cls(
            ids=np.empty(0, dtype=np.int64),
            X=np.empty((0, len(FEATURE_NAMES))),
            artist_id=np.empty(0, dtype=np.int64),
            release_year=none,
            popularity=none,
            key=none,
            mode=none,
            time_signature=none,
            external_id=pa.array([], pa.string()),
            name=pa.array([], pa.string()),
            genre_rows=np.empty(0, dtype=np.int64),
            genre_codes=np.empty(0, dtype=np.int64),
            genre_names=np.empty(0, dtype=object),
        )


def catalog_columns() -> CatalogColumns:
    """Every song of the catalog, by id, with every column a run needs: one
    statement (a single snapshot)."""
    columns = _from_table(_postgres_table()) if connection.vendor == "postgresql" else _sqlite_columns()
    # Arrow's allocator keeps freed blocks for reuse: hand the read's back
    # (the raw text and the table) before the fit allocates its own.
    pa.default_memory_pool().release_unused()
    return columns


def _select_sql() -> str:
    def column(name: str) -> str:
        if name in FEATURE_NAMES:
            return f"{name}::float8"
        if name == "genres":
            return "genres::text"
        return name

    return f"SELECT {', '.join(column(c) for c in COLUMNS)} FROM {Song._meta.db_table} ORDER BY id"


class _BreakInText(Exception):
    """A text before the last column holds a line break: rows span lines."""


def _copy_csv(sql: str, names: list[str], types: dict[str, pa.DataType], *, last_has_no_break: bool) -> pa.Table:
    """``COPY (sql) TO STDOUT (FORMAT csv)`` parsed by Arrow into a table of
    ``names`` typed ``types`` (only an unquoted empty field is NULL, as COPY
    writes it; "" is an empty text).

    ``last_has_no_break``: the last column never holds a line break (the
    genres' JSON escapes its breaks). Then rows are lines unless a text
    before it holds a break, so the text is parsed in pieces of PIECE_BYTES
    cut at line ends while it arrives (the raw text in memory stays one
    piece, and Arrow's simple parse is twice as fast); a break inside such a
    text leaves a line short of columns, which Arrow refuses, and the COPY
    is read again whole with the parse that follows quotes across lines.
    """
    convert = pacsv.ConvertOptions(
        column_types=types, null_values=[""], strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    read = pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES)
    if last_has_no_break:
        try:
            return _copy_csv_by_lines(sql, names, types, read, convert)
        except _BreakInText:
            pass
    buf = bytearray()
    with connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            buf += block
    if not buf:
        return pa.table({name: pa.array([], types[name]) for name in names})
    return pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(buf)),
        read_options=read,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=convert,
    )


def _copy_csv_by_lines(sql, names, types, read, convert) -> pa.Table:
    tables: list[pa.Table] = []
    broken = False

    def parse(piece: bytes) -> bool:
        try:
            tables.append(pacsv.read_csv(pa.BufferReader(piece), read_options=read, convert_options=convert))
        except pa.ArrowInvalid:
            tables.clear()
            return True
        return False

    pending = bytearray()
    with connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            if broken:
                continue  # the COPY runs to its end; the text is read again whole
            pending += block
            if len(pending) >= PIECE_BYTES:
                cut = pending.rfind(b"\n") + 1
                broken = parse(bytes(pending[:cut]))
                del pending[:cut]
    if not broken and pending:
        broken = parse(bytes(pending))
    if broken:
        raise _BreakInText
    if not tables:
        return pa.table({name: pa.array([], types[name]) for name in names})
    return pa.concat_tables(tables)


def _postgres_table() -> pa.Table:
    types = dict.fromkeys(["id", "artist_id"], pa.int64())
    types.update(dict.fromkeys(FEATURE_NAMES, pa.float64()))
    types.update(dict.fromkeys(OPTIONAL_NUMBERS, pa.float64()))
    types.update(dict.fromkeys(TEXTS, pa.string()))
    return _copy_csv(_select_sql(), list(COLUMNS), types, last_has_no_break=True)


def _numbers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric Arrow column as float64, NaN for NULL."""
    return pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy()


def _from_table(table: pa.Table) -> CatalogColumns:
    n = table.num_rows
    if not n:
        return CatalogColumns.empty()
    # Column by column, each Arrow column let go once converted: the read's
    # peak is the table plus one column, not the table plus every array.
    columns = {name: table.column(name) for name in table.column_names}
    del table

    def take(name: str):
        return columns.pop(name)

    X = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    for j, name in enumerate(FEATURE_NAMES):
        X[:, j] = take(name).to_numpy()
    rows, codes, names = genre_pairs(take("genres"))
    return CatalogColumns(
        ids=take("id").to_numpy().astype(np.int64, copy=False),
        X=X,
        artist_id=take("artist_id").to_numpy().astype(np.int64, copy=False),
        **{name: _numbers(take(name)) for name in OPTIONAL_NUMBERS},
        external_id=take("external_id").combine_chunks(),
        name=take("name").combine_chunks(),
        genre_rows=rows,
        genre_codes=codes,
        genre_names=names,
    )


def genre_pairs(genres: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, codes, distinct names) of songs' genre lists given as JSON text:
    song ``rows[i]`` carries genre ``names[codes[i]]`` (trimmed, lower case).
    Songs share few distinct lists (an artist's genres): Arrow encodes the
    column as a dictionary and each distinct list is parsed once."""
    encoded = pc.dictionary_encode(pc.fill_null(genres, "[]"))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.unify_dictionaries().combine_chunks() if encoded.num_chunks else None
    if encoded is None or not len(encoded):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    lists = [[str(x).strip().lower() for x in (json.loads(u) or [])] for u in encoded.dictionary.to_pylist()]
    song_list = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    # Distinct genres, numbered in order of first appearance over the songs.
    lengths = np.array([len(item) for item in lists], dtype=np.int64)
    per_song = lengths[song_list]
    total = int(per_song.sum())
    if not total:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    vocabulary: dict[str, int] = {}
    list_codes = np.array([vocabulary.setdefault(x, len(vocabulary)) for item in lists for x in item], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    within = np.arange(total) - np.repeat(np.cumsum(per_song) - per_song, per_song)
    rows = np.repeat(np.arange(len(song_list), dtype=np.int64), per_song)
    first_codes = list_codes[np.repeat(starts[song_list], per_song) + within]
    # Renumber by first appearance in song order (as pandas.factorize would).
    uniq, first_seen = np.unique(first_codes, return_index=True)
    order = uniq[np.argsort(first_seen, kind="stable")]
    renumber = np.empty(len(vocabulary), dtype=np.int64)
    renumber[order] = np.arange(len(order))
    names = np.array(list(vocabulary), dtype=object)[order]
    return rows, renumber[first_codes], names


def _sqlite_columns() -> CatalogColumns:
    sql = f"SELECT {', '.join(COLUMNS)} FROM {Song._meta.db_table} ORDER BY id"
    parts: list[list[tuple]] = []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            parts.append(rows)
    rows = [row for part in parts for row in part]
    if not rows:
        return CatalogColumns.empty()
    columns = list(zip(*rows, strict=True))
    del rows, parts
    genres = [g if isinstance(g, str) or g is None else json.dumps(g) for g in columns[COLUMNS.index("genres")]]
    table = pa.table(
        {
            "id": pa.array(columns[0], pa.int64()),
            **{name: pa.array(columns[COLUMNS.index(name)], pa.float64()) for name in FEATURE_NAMES},
            "artist_id": pa.array(columns[COLUMNS.index("artist_id")], pa.int64()),
            **{name: pa.array(columns[COLUMNS.index(name)], pa.float64()) for name in OPTIONAL_NUMBERS},
            "external_id": pa.array(columns[COLUMNS.index("external_id")], pa.string()),
            "name": pa.array(columns[COLUMNS.index("name")], pa.string()),
            "genres": pa.array(genres, pa.string()),
        }
    )
    return _from_table(table)


def artist_names(artist_ids: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """(ids, names) of the artists among ``artist_ids`` (sorted, distinct),
    for the joint credits of the similar-song index."""
    wanted = unique_ints(np.asarray(artist_ids, dtype=np.int64))
    if not len(wanted):
        return wanted, pa.array([], pa.string())
    table = Artist._meta.db_table
    if connection.vendor == "postgresql":
        artists = _copy_csv(
            f"SELECT id, name FROM {table} ORDER BY id",
            ["id", "name"],
            {"id": pa.int64(), "name": pa.string()},
            last_has_no_break=False,
        )
        ids = artists.column("id").to_numpy()
        names = artists.column("name")
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, name FROM {table} ORDER BY id")
            rows = cursor.fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        names = pa.array([r[1] for r in rows], pa.string())
    pos = np.clip(np.searchsorted(wanted, ids), 0, len(wanted) - 1)
    hit = np.flatnonzero(wanted[pos] == ids)
    return ids[hit], names.take(pa.array(hit))


def feature_matrix_binary(*, id_range: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, X) of the songs (by id; all, or those in an inclusive id range)
    on Postgres: one binary COPY parsed by a NumPy dtype, no Python object
    per song. For reads that need only the features (a labelling chunk, a
    run labelling the catalog again)."""
    # Integers written into the statement: Django's debug cursor passes no parameters to copy().
    where = f" WHERE id BETWEEN {int(id_range[0])} AND {int(id_range[1])}" if id_range else ""
    columns = ", ".join(["id::int8", *(f"{name}::float8" for name in FEATURE_NAMES)])
    buf = bytearray()
    with connection.cursor() as cursor:
        sql = f"COPY (SELECT {columns} FROM {Song._meta.db_table}{where} ORDER BY id) TO STDOUT (FORMAT binary)"
        with cursor.copy(sql) as copy:
            for block in copy:
                buf += block
    # Binary COPY: a 19-byte header, then per row a 16-bit field count and per
    # field a 32-bit length and the big-endian value; a 16-bit -1 ends it.
    # Every column is NOT NULL, so every row has the same layout.
    fields = [("count", ">i2"), ("id_length", ">i4"), ("id", ">i8")]
    for i in range(len(FEATURE_NAMES)):
        fields += [(f"length{i}", ">i4"), (f"value{i}", ">f8")]
    rows = np.frombuffer(memoryview(buf)[19:-2], dtype=np.dtype(fields))
    if rows.size and (rows["count"] != len(FEATURE_NAMES) + 1).any():
        raise RuntimeError("unexpected binary COPY layout of the feature matrix")
    X = np.empty((len(rows), len(FEATURE_NAMES)), dtype=np.float64)
    for i in range(len(FEATURE_NAMES)):
        X[:, i] = rows[f"value{i}"]
    return rows["id"].astype(np.int64), X
