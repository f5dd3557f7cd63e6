"""Reading and validating catalog CSVs, with no Django in sight.

External ids (songs and artists) follow one rule, checked per row
(`id_problem`): at most ID_MAX_LENGTH (64) characters after trimming
whitespace at the ends, no control or line-separator characters (C0, DEL,
C1, U+2028, U+2029), none of `/ \\ ? # %` (they would need escaping in
every URL built from the id), and not `.` or `..` (path segments). A row with
a bad id is rejected with its line, column and reason, like a bad feature.

The importer streams a file in blocks: each block is parsed by Arrow's CSV
reader, its columns are validated with vectorised checks, and the good rows
come out as `Batch`es (Arrow tables of canonical columns) that the service
writes into a staging table. Whole-file problems raise `ImportRejected`.
"""

from __future__ import annotations

import ast
import codecs
import csv
import datetime as dt
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .features import ATTRIBUTES, FEATURE_NAMES, FEATURES
from .formats import FLAGSHIP, FLAGSHIP_HEADER, FORMATS, SPOTIFY
from .hashing import NULL_HASH, mix64, string_hashes

# Fields of a CSV can be long (genre lists), but not absurdly so.
csv.field_size_limit(1_000_000)
# Exports have a few dozen columns; a header with more is not a catalog's.
MAX_COLUMNS = 10_000


class ImportRejected(Exception):
    """The whole file is refused; nothing of it is stored."""


# Canonical column -> the header names that carry it, per format. The first
# name found wins. Features share their names across every known export.
_FEATURE_ALIASES = {name: (name,) for name in FEATURE_NAMES}
FLAGSHIP_COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("id_songs",),
    "name": ("name_song",),
    "popularity": ("popularity_songs",),
    "explicit": ("explicit",),
    "artist_external_id": ("id_artists",),
    "release_date": ("release_date",),
    "key": ("key",),
    "mode": ("mode",),
    "time_signature": ("time_signature",),
    "artist_followers": ("followers",),
    "genres": ("genres",),
    "artist_name": ("name_artists",),
    "artist_popularity": ("popularity_artists",),
    **_FEATURE_ALIASES,
}
SPOTIFY_COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("track_id", "id", "song_id", "spotify_id", "id_songs"),
    "name": ("track_name", "name", "song", "song_name", "title", "track", "name_song"),
    "artist_name": (
        "track_artist",
        "artists",
        "artist",
        "artist_name",
        "artist(s)_name",
        "artist_names",
        "name_artists",
    ),
    "artist_external_id": ("artist_id", "artist_ids", "id_artists"),
    "album": ("track_album_name", "album", "album_name"),
    "genres": ("playlist_genre", "track_genre", "genre", "genres"),
    "popularity": ("track_popularity", "popularity", "popularity_songs"),
    "explicit": ("explicit",),
    "release_date": ("track_album_release_date", "release_date", "album_release_date", "year", "released_year"),
    "key": ("key",),
    "mode": ("mode",),
    "time_signature": ("time_signature",),
    "artist_followers": ("followers", "artist_followers"),
    "artist_popularity": ("artist_popularity", "popularity_artists"),
    **_FEATURE_ALIASES,
}
FORMAT_COLUMNS = {FLAGSHIP: FLAGSHIP_COLUMNS, SPOTIFY: SPOTIFY_COLUMNS}
REQUIRED = {FLAGSHIP: ("external_id", "name", "artist_external_id"), SPOTIFY: ("name", "artist_name")}

# The columns of a Batch and of the staging table, in order.
STAGE_COLUMNS = (
    "line",
    "external_id",
    "name",
    "album",
    "artist_external_id",
    "artist_name",
    "artist_genres",
    "artist_followers",
    "artist_popularity",
    "genres",
    "popularity",
    "explicit",
    "release_date",
    "release_year",
    *FEATURE_NAMES,
    "key",
    "mode",
    "time_signature",
)


@dataclass
class Rejection:
    line: int
    column: str
    value: str
    reason: str

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "value": self.value[:80], "reason": self.reason}


@dataclass
class Batch:
    """Good rows of one chunk as an Arrow table in STAGE_COLUMNS order."""

    table: pa.Table
    rows_read: int
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return self.table.num_rows


# --- file level ---------------------------------------------------------


@dataclass
class FileInfo:
    sha256: str
    size: int
    encoding: str
    line_count: int


def file_inspect(path: Path) -> FileInfo:
    """One pass over the bytes: hash, size, encoding and a line count.

    UTF-8 (with or without BOM) is taken when the whole file decodes as
    UTF-8; otherwise Latin-1, which decodes anything.
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    size = lines = 0
    first = b""
    last_byte = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            if not first:
                first = chunk[:4096]
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            last_byte = chunk[-1:]
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if size == 0:
        raise ImportRejected("The file is empty.")
    if b"\x00" in first:
        raise ImportRejected("The file is not a CSV text file: it contains binary data (NUL bytes).")
    if last_byte and last_byte != b"\n":
        lines += 1
    encoding = ("utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8") if utf8 else "latin-1"
    if not utf8 and _looks_binary(first):
        raise ImportRejected("The file is not a CSV text file: it is neither UTF-8 nor readable text.")
    return FileInfo(sha256=digest.hexdigest(), size=size, encoding=encoding, line_count=lines)


def _looks_binary(head: bytes) -> bool:
    # Latin-1 text has few control characters besides tab and line ends.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return controls > max(4, len(head) // 100)


# --- lines too long for the reader ---------------------------------------

# Arrow parses a block at a time and a record (the header too) must fit in one.
# Its own words for a longer one ("straddling object straddles two block
# boundaries", "… header is larger than block size") name neither the line nor
# the field: `oversized_record` finds them.
_BLOCK_ERRORS = ("straddl", "block size")


@dataclass
class OversizedRecord:
    line: int  # the record's number, header = 1 (as rejected rows are numbered)
    size: int  # bytes, without its line end
    columns: int  # fields in it
    widest_column: int  # 0-based position of its longest field
    widest_size: int  # bytes of that field
    unclosed_quote: bool  # it runs to the end of the file inside a quoted field


def _scan(path: Path, start: int, stop: int | None, fn) -> None:
    """Call fn(absolute offset of chunk, bytes array, parity after each byte) over
    path[start:stop] in 1 MB chunks; parity is 1 inside a quoted field."""
    carry = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        offset = start
        while stop is None or offset < stop:
            chunk = fh.read(1 << 20 if stop is None else min(1 << 20, stop - offset))
            if not chunk:
                break
            a = np.frombuffer(chunk, dtype=np.uint8)
            quotes = a == 0x22
            if quotes.any():  # a doubled "" toggles twice; uint8 wraps at 256, which keeps the parity
                parity = (np.cumsum(quotes, dtype=np.uint8) + np.uint8(carry)) & np.uint8(1)
            else:
                parity = np.full(len(a), carry, dtype=np.uint8)
            carry = int(parity[-1])
            fn(offset, a, parity)
            offset += len(chunk)


def oversized_record(path: Path, limit: int, *, encoding: str = "utf-8", from_line: int = 1) -> OversizedRecord | None:
    """The first CSV record (quotes respected) from line `from_line` on that
    is longer than `limit` bytes, with its widest field; None if there is
    none. Streams the file in chunks: memory stays flat whatever the record's size."""
    ends: list[int] = []  # the end of the oversized record, once found
    state = {"line": 1, "start": 3 if encoding == "utf-8-sig" else 0, "found": None, "size": 0, "parity": 0}

    def records(offset: int, a: np.ndarray, parity: np.ndarray) -> None:
        state["size"], state["parity"] = offset + len(a), int(parity[-1])
        if ends:
            return
        newlines = offset + np.flatnonzero((a == 0x0A) & (parity == 0))
        if state["found"] is None:
            starts = np.concatenate([[state["start"]], newlines[:-1] + 1])
            lines = state["line"] + np.arange(len(newlines))
            longer = np.flatnonzero((newlines - starts > limit) & (lines >= from_line))
            if longer.size:
                i = int(longer[0])
                state["found"] = (state["line"] + i, int(starts[i]))
                ends.append(int(newlines[i]))
                return
            if newlines.size:
                state["line"] += len(newlines)
                state["start"] = int(newlines[-1]) + 1
            if offset + len(a) - state["start"] > limit and state["line"] >= from_line:
                state["found"] = (state["line"], state["start"])  # its end is further on
        elif newlines.size:
            ends.append(int(newlines[0]))

    _scan(path, 0, None, records)
    if state["found"] is None:
        if state["size"] - state["start"] <= limit or state["line"] < from_line:
            return None
        state["found"] = (state["line"], state["start"])  # the last record, without a line end
    line, start = state["found"]
    end = ends[0] if ends else state["size"]
    if end > start and ends:
        with open(path, "rb") as fh:
            fh.seek(end - 1)
            if fh.read(1) == b"\r":
                end -= 1
    fields = {"count": 1, "last": start - 1, "widest": 0, "widest_size": 0}

    def separators(offset: int, a: np.ndarray, parity: np.ndarray) -> None:
        commas = offset + np.flatnonzero((a == 0x2C) & (parity == 0))
        if not commas.size:
            return
        bounds = np.concatenate([[fields["last"]], commas])
        sizes = np.diff(bounds) - 1
        i = int(np.argmax(sizes))
        if sizes[i] > fields["widest_size"]:
            fields["widest"], fields["widest_size"] = fields["count"] - 1 + i, int(sizes[i])
        fields["count"] += len(commas)
        fields["last"] = int(commas[-1])

    _scan(path, start, end, separators)
    if end - fields["last"] - 1 > fields["widest_size"]:
        fields["widest"], fields["widest_size"] = fields["count"] - 1, end - fields["last"] - 1
    return OversizedRecord(
        line=line,
        size=end - start,
        columns=fields["count"],
        widest_column=fields["widest"],
        widest_size=fields["widest_size"],
        unclosed_quote=not ends and state["parity"] == 1,
    )


def _megabytes(n: int) -> str:
    if n < 1 << 20:
        return f"{n:,} bytes"
    return f"{n / (1 << 20):,.1f} MB".replace(".0 MB", " MB")


def oversized_record_message(record: OversizedRecord, *, limit: int, header: list[str] | None = None) -> str:
    """What to tell a person about a record the reader cannot take."""
    most = f"a line may be at most {_megabytes(limit)}"
    if record.line == 1:
        return (
            f"The header (line 1) is {_megabytes(record.size)} long with {record.columns:,} columns; {most}. "
            "It is not a catalog export's header; nothing was imported."
        )
    column = f"column {record.widest_column + 1}"
    if header and record.widest_column < len(header):
        column += f", {header[record.widest_column].strip()[:40]},"
    if record.unclosed_quote:
        return (
            f"Line {record.line} opens a quoted field in {column} that is never closed: the rest of the file "
            f"({_megabytes(record.size)}) reads as one row, and {most}. Check the quotes on line {record.line}; "
            "nothing was imported."
        )
    return (
        f"Line {record.line} is {_megabytes(record.size)} long: {column} holds {_megabytes(record.widest_size)}, "
        f"and {most}. Shorten or remove that field; nothing was imported."
    )


# --- header -------------------------------------------------------------


def _norm_header(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def detect_format(header: list[str], requested: str = "auto") -> tuple[str, dict[str, int]]:
    """Pick the format from the header; return it with canonical column -> index."""
    names = [_norm_header(h) for h in header]
    if len(names) == 1:
        for sep, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in names[0]:
                raise ImportRejected(
                    f"The file looks {label}-separated; musiccluster reads comma-separated CSV. "
                    "Re-export it with commas as the separator."
                )
    if requested not in ("auto", *FORMATS):
        raise ImportRejected(f"Unknown format {requested!r}: choose auto, {', '.join(FORMATS)}.")
    if requested == "auto":
        candidates = [FLAGSHIP] if {"id_songs", "name_song"} <= set(names) else [SPOTIFY]
    else:
        candidates = [requested]
    fmt = candidates[0]
    index: dict[str, int] = {}
    for canonical, aliases in FORMAT_COLUMNS[fmt].items():
        for alias in aliases:
            if alias in names:
                index[canonical] = names.index(alias)
                break
    missing_required = [c for c in REQUIRED[fmt] if c not in index]
    missing_features = [f for f in FEATURE_NAMES if f not in index]
    if missing_required:
        expected = ", ".join(FLAGSHIP_HEADER)
        alt = " / ".join(f"{c}: one of {', '.join(SPOTIFY_COLUMNS[c])}" for c in REQUIRED[SPOTIFY])
        raise ImportRejected(
            f"Unknown header ({', '.join(names[:12])}{', …' if len(names) > 12 else ''}). "
            f"Expected the Amazon/Spotify export columns ({expected}), or a Spotify-style export with "
            f"{alt} and the ten feature columns ({', '.join(FEATURE_NAMES)})."
        )
    if missing_features:
        raise ImportRejected(
            f"Missing feature column{'s' if len(missing_features) > 1 else ''}: {', '.join(missing_features)}. "
            f"Every import needs the ten features: {', '.join(FEATURE_NAMES)}."
        )
    return fmt, index


# --- value parsing --------------------------------------------------------

_WS = re.compile(r"\s+")


def _norm_text(value: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", value)).strip().casefold()


def derived_id(*parts: str) -> str:
    """A stable id for sources without one: the same names give the same id."""
    key = "\x1f".join(_norm_text(p) for p in parts)
    return "mc-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]


ID_MAX_LENGTH = 64
ID_FORBIDDEN = "/\\?#%"
# RE2 (Arrow) syntax: any forbidden character, any control character, or a
# whole id of one or two dots.
_BAD_ID_RE2 = r"[/\\?#%\p{Cc}\x{2028}\x{2029}]|^\.\.?$"


def id_problem(value: str) -> str | None:
    """Why `value` (already trimmed) cannot be an external id, or None when it can."""
    if len(value) > ID_MAX_LENGTH:
        return f"id longer than {ID_MAX_LENGTH} characters"
    if value in (".", ".."):
        return f"id {value!r} is not allowed (a path segment)"
    for char in value:
        if char in ID_FORBIDDEN:
            return f"id contains {char!r}; ids may not contain {' '.join(ID_FORBIDDEN)}"
        if unicodedata.category(char) == "Cc" or char in "\u2028\u2029":
            return f"id contains a control character (U+{ord(char):04X})"
    return None


def _bad_ids(values: pa.Array) -> np.ndarray:
    """Which ids break the id rule (characters only: the length is checked apart)."""
    return pc.match_substring_regex(values, _BAD_ID_RE2).to_numpy(zero_copy_only=False)


_LIST_ID = re.compile(r"[A-Za-z0-9_\-:.]+")


@functools.lru_cache(maxsize=262_144)
def parse_artist_id(value: str) -> str:
    """'abc', "['abc', 'def']" -> the first id."""
    value = value.strip()
    if value.startswith("["):
        match = _LIST_ID.search(value[1:])
        return match.group(0) if match else ""
    return value


# Cells that mean "no genre": pandas' empty set and NaN, empty lists and the like.
GENRE_PLACEHOLDERS = frozenset(
    {"", "set()", "[]", "{}", "()", "nan", "none", "null", "n/a", "na", "-", "--", "?", "unknown", "<na>"}
)
# What separates genres inside one cell: commas, semicolons, pipes, and a
# slash with spaces around it ("rock / metal"). A slash between two words
# ("dance/electronic", "r&b/soul") is kept: exports use it inside one genre
# label. "&", "and", hyphens and spaces never split ("r&b", "drum and bass",
# "lo-fi", "hip hop").
_GENRE_SEPARATORS = re.compile(r"\s*(?:[,;|\n\t]|\s/\s)\s*")
_GENRE_QUOTES = " \t'\"`[](){}"
_GENRE_MAX_LENGTH = 100


def _genre_name(value: str) -> str:
    """One genre label: Unicode-normalised, trimmed, one space between words, lower case."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", value).strip(_GENRE_QUOTES)).strip().casefold()


@functools.lru_cache(maxsize=262_144)  # cells repeat a lot (an artist's list, a playlist genre)
def _parse_genres(value: str) -> tuple[str, ...]:
    value = value.strip()
    if value.casefold() in GENRE_PLACEHOLDERS:
        return ()
    items: list = [value]
    if value[:1] in "[({" or value.startswith("set("):
        # A Python/JSON literal of a list, tuple or set: "['pop', 'dance pop']", "{'rock'}".
        literal = value[4:-1] if value.startswith("set(") and value.endswith(")") else value
        try:
            parsed = ast.literal_eval(literal)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, (list, tuple, set, frozenset)):
            items = sorted(parsed, key=str) if isinstance(parsed, (set, frozenset)) else list(parsed)
        elif isinstance(parsed, str):
            items = [parsed]
    out: list[str] = []
    for item in items:
        if item is None or (isinstance(item, float) and item != item):  # None, NaN inside a list
            continue
        for part in _GENRE_SEPARATORS.split(str(item)):
            if part.strip().casefold() in GENRE_PLACEHOLDERS:
                continue
            name = _genre_name(part)
            if name in GENRE_PLACEHOLDERS or len(name) > _GENRE_MAX_LENGTH or name in out:
                continue
            out.append(name)
    return tuple(out)


def parse_genres(value: str) -> list[str]:
    """A genre cell as a list of single genres, in the cell's order, without repeats.

    Reads Python- or JSON-style lists and sets ("['pop', 'dance pop']",
    "{'rock'}") and plain text split on commas, semicolons, pipes and
    spaced slashes ("hip hop, pop, R&B" -> ["hip hop", "pop", "r&b"]).
    Names are trimmed and lower-cased (NFKC, one space between words);
    placeholders (``set()``, ``[]``, ``nan``, ``none``, empty) give no genre.
    """
    return list(_parse_genres(value))


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y-%m", "%Y")


def parse_release(value: str) -> tuple[dt.date | None, int | None]:
    """A year, a full ISO date, a US date (m/d/Y) or a day-first date.

    m/d/Y is tried before d/m/Y: Spotify exports write US dates; a first
    number above 12 can only be a day. Unparseable dates are dropped, not
    rejected: the date does not feed the clustering.
    """
    value = value.strip()
    if not value:
        return None, None
    for fmt in _DATE_FORMATS:
        try:
            parsed = dt.datetime.strptime(value[:10] if fmt == "%Y-%m-%d" else value, fmt)
        except ValueError:
            continue
        if not 1800 <= parsed.year <= 2200:
            return None, None
        if fmt in ("%Y-%m", "%Y"):
            return None, parsed.year
        return parsed.date(), parsed.year
    return None, None


_TRUE = {"1", "true", "t", "yes", "y", "1.0"}
_FALSE = {"0", "false", "f", "no", "n", "0.0"}


def parse_bool(value: str) -> bool | None:
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _per_value(column: pa.Array, fn, out_type: pa.DataType) -> pa.Array:
    """Apply a Python parser to each distinct value only (dates, genre lists
    and ids repeat a lot), then expand back to the column."""
    encoded = pc.dictionary_encode(column)
    values = [fn(v) for v in encoded.dictionary.to_pylist()]
    if pa.types.is_struct(out_type):
        values = [dict(zip(out_type.names, v)) for v in values]
    mapped = pa.array(values, type=out_type)
    return mapped.take(encoded.indices)


_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


def _to_float(column: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Strings -> float64 (NaN where not a plain decimal number), and the strings.

    Clean columns take one C++ cast; a column with anything odd in it (blanks,
    words, padding) goes through a regular expression first.
    """
    try:
        values = pc.cast(column, pa.float64())
        return values.to_numpy(zero_copy_only=False), column
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(column)
    numeric = pc.match_substring_regex(trimmed, _NUMBER)
    values = pc.cast(pc.if_else(numeric, trimmed, pa.scalar(None, pa.string())), pa.float64())
    return values.to_numpy(zero_copy_only=False), trimmed


def _optional_int(column: pa.Array | None, n: int, low: float, high: float) -> pa.Array:
    """Optional integer columns: anything missing or out of range becomes NULL."""
    if column is None:
        return pa.nulls(n, pa.int64())
    numbers, _ = _to_float(column)
    ok = np.isfinite(numbers) & (numbers >= low) & (numbers <= high)
    return pa.array(np.rint(np.where(ok, numbers, 0)).astype(np.int64), mask=~ok)


_NON_FINITE = {"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}


@functools.lru_cache(maxsize=262_144)  # artists' genre lists repeat across blocks
def _genres_json(value: str) -> str:
    # The same text Django's JSONField writes, so unchanged rows compare equal on SQLite too.
    return json.dumps(parse_genres(value))


_YEAR = r"^\d{4}$"


def _release(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Release dates and years: ISO dates and bare years vectorised, the
    other spellings through parse_release, once per distinct value."""
    trimmed = pc.utf8_trim_whitespace(column)
    iso = pc.cast(
        pc.strptime(pc.utf8_slice_codeunits(trimmed, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True),
        pa.date32(),
    )
    is_year = pc.match_substring_regex(trimmed, _YEAR)
    bare_year = pc.cast(pc.if_else(is_year, trimmed, pa.scalar(None, pa.string())), pa.int64())
    dates, years = iso, pc.coalesce(pc.year(iso), bare_year)
    other = pc.and_(pc.and_(pc.is_null(iso), pc.invert(is_year)), pc.greater(pc.utf8_length(trimmed), 0))
    if pc.any(other).as_py():
        parsed = _per_value(trimmed, parse_release, pa.struct([("date", pa.date32()), ("year", pa.int64())]))
        dates = pc.if_else(other, parsed.field("date"), dates)
        years = pc.if_else(other, parsed.field("year"), years)
    # Years outside what a release can be are dropped, as parse_release does.
    plausible = pc.and_(pc.greater_equal(years, 1800), pc.less_equal(years, 2200))
    return pc.if_else(plausible, dates, pa.scalar(None, pa.date32())), pc.if_else(
        plausible, years, pa.scalar(None, pa.int64())
    )


class CatalogReader:
    """Streams a CSV file as validated Batches.

    Parsing is Arrow's streaming CSV reader (C++); checks are vectorised.
    Python only touches distinct values (dates, genre lists) and the rows
    it rejects. Lines are counted one per record, header = line 1.

    >>> reader = CatalogReader(path, info)
    >>> for batch in reader.batches(): ...
    """

    def __init__(self, path: Path, info: FileInfo, *, fmt: str = "auto", block_bytes: int = 4 << 20):
        self.path = Path(path)
        self.info = info
        self.requested_format = fmt
        self.block_bytes = block_bytes
        self.format: str | None = None
        self.index: dict[str, int] = {}
        self.header: list[str] = []
        self._bad_lines: list[int] = []  # lines of rows with the wrong number of fields
        self._bad_rejections: list[Rejection] = []

    def _read_header(self) -> list[str]:
        with open(self.path, encoding=self.info.encoding, newline="") as fh:
            try:
                header = next(csv.reader(fh))
            except StopIteration:
                raise ImportRejected("The file is empty.") from None
            except csv.Error as exc:
                if "field limit" in str(exc):
                    raise ImportRejected(
                        f"The header (line 1) has a column name longer than {csv.field_size_limit():,} characters: "
                        "it is not a catalog export's header. Nothing was imported."
                    ) from None
                raise ImportRejected(f"The header is not valid CSV: {exc}.") from None
        if not any(h.strip() for h in header):
            raise ImportRejected("The first line is empty: expected a header row with column names.")
        if len(header) > MAX_COLUMNS:
            raise ImportRejected(
                f"The header has {len(header):,} columns; a catalog has at most {MAX_COLUMNS:,} "
                "(an export has a few dozen). Nothing was imported."
            )
        return header

    def _raise_oversized(self, exc: Exception, *, from_line: int = 1):
        """ImportRejected naming the line (or the header) too long for one
        block: the first such record from line `from_line` on."""
        record = oversized_record(self.path, self.block_bytes, encoding=self.info.encoding, from_line=from_line)
        if record is None:  # not what Arrow meant after all: its own words, then
            raise ImportRejected(f"The file is not valid CSV: {exc}.") from None
        raise ImportRejected(
            oversized_record_message(record, limit=self.block_bytes, header=self.header or None)
        ) from None

    def _on_invalid_row(self, row) -> str:
        kind = "too many" if row.actual_columns > row.expected_columns else "too few"
        line = row.number or 0
        self._bad_lines.append(line)
        self._bad_rejections.append(
            Rejection(
                line,
                "*",
                row.text[:80],
                f"{kind} fields: {row.actual_columns} where the header has {row.expected_columns}",
            )
        )
        return "skip"

    def batches(self) -> Iterator[Batch]:
        self.header = self._read_header()
        self.format, self.index = detect_format(self.header, self.requested_format)
        # Unique placeholder names: Arrow needs them, and headers may repeat.
        names = [f"c{i}" for i in range(len(self.header))]
        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    use_threads=False,  # keeps row numbers for rejected rows
                    block_size=self.block_bytes,
                    skip_rows=1,
                    column_names=names,
                    encoding="utf8" if self.info.encoding.startswith("utf-8") else self.info.encoding,
                ),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=self._on_invalid_row),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            if any(words in str(exc) for words in _BLOCK_ERRORS):
                self._raise_oversized(exc)
            raise ImportRejected(f"The file is not valid CSV: {exc}.") from None
        good_rows = 0
        rows_read = 0
        reported_bad = 0
        while True:
            try:
                record_batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                if any(words in str(exc) for words in _BLOCK_ERRORS):
                    # Arrow stops at the record after the ones it handed over
                    # (well-formed ones and those it skipped as malformed).
                    self._raise_oversized(exc, from_line=2 + good_rows + len(self._bad_rejections))
                raise ImportRejected(f"The file is not valid CSV: {exc}.") from None
            framing = self._bad_rejections[reported_bad:]
            reported_bad = len(self._bad_rejections)
            batch = self._validate(record_batch, first_row=good_rows)
            batch.rejections[:0] = framing
            batch.rows_read += len(framing)
            good_rows += record_batch.num_rows
            rows_read += batch.rows_read
            yield batch
        if reported_bad < len(self._bad_rejections):
            framing = self._bad_rejections[reported_bad:]
            rows_read += len(framing)
            yield Batch(pa.table({c: [] for c in STAGE_COLUMNS}), rows_read=len(framing), rejections=framing)
        if rows_read == 0:
            raise ImportRejected("The file has a header but no data rows.")

    def _lines(self, positions: np.ndarray) -> np.ndarray:
        """File lines of well-formed rows, given their 0-based positions among them."""
        lines = positions + 2
        if self._bad_lines:
            bad = np.sort(np.asarray(self._bad_lines))
            shifted = bad - np.arange(len(bad))  # where each skipped row sat among good rows
            lines = lines + np.searchsorted(shifted, lines, side="right")
        return lines

    def _validate(self, rb: pa.RecordBatch, *, first_row: int) -> Batch:
        n = rb.num_rows
        col = lambda canonical: rb.column(self.index[canonical]) if canonical in self.index else None  # noqa: E731
        valid = np.ones(n, dtype=bool)
        problems: list[tuple[int, str, str, str]] = []  # (row, column, value, reason)
        features: dict[str, np.ndarray] = {}
        for feat in FEATURES:
            numbers, trimmed = _to_float(col(feat.name))
            with np.errstate(invalid="ignore"):
                if feat.low_inclusive:
                    good = (numbers >= feat.low) & (numbers <= feat.high)
                else:
                    good = (numbers > feat.low) & (numbers < feat.high)
            bad = np.flatnonzero(~good & valid)
            if len(bad):
                values = trimmed.take(pa.array(bad)).to_pylist()
                for i, value in zip(bad.tolist(), values):
                    if not value:
                        reason = "missing value"
                    elif value.lower() in _NON_FINITE:
                        reason = f"not a finite number ({value})"
                    elif np.isnan(numbers[i]):
                        reason = f"not a number ({value!r})"
                    else:
                        interval = (
                            f"{feat.low:g} to {feat.high:g}"
                            if feat.low_inclusive
                            else f"above {feat.low:g} and below {feat.high:g}"
                        )
                        reason = f"out of range ({value}); expected {interval}{' ' + feat.unit if feat.unit else ''}"
                    problems.append((i, feat.name, value, reason))
                valid[bad] = False
            features[feat.name] = numbers

        names = pc.utf8_trim_whitespace(col("name"))
        artist_col = col("artist_name")
        artist_names = pc.utf8_trim_whitespace(artist_col) if artist_col is not None else pa.array([""] * n)
        if self.format == FLAGSHIP:
            ext_ids = pc.utf8_trim_whitespace(col("external_id"))
        else:
            ext_col = col("external_id")
            ext_ids = pc.utf8_trim_whitespace(ext_col) if ext_col is not None else pa.array([""] * n)
        art_col = col("artist_external_id")
        artist_ids = _per_value(art_col, parse_artist_id, pa.string()) if art_col is not None else pa.array([""] * n)
        checks = [
            ("name", names, lambda lengths: lengths == 0, "missing title"),
            ("external_id", ext_ids, lambda lengths: lengths > 64, "id longer than 64 characters"),
        ]
        if self.format == FLAGSHIP:
            checks.append(("id_songs", ext_ids, lambda lengths: lengths == 0, "missing song id"))
        for column, values, test, reason in checks:
            bad = np.flatnonzero(test(pc.utf8_length(values).to_numpy(zero_copy_only=False)) & valid)
            for i in bad.tolist():
                problems.append((i, column, values[i].as_py(), reason))
            valid[bad] = False
        for canonical, values in (("external_id", ext_ids), ("artist_external_id", artist_ids)):
            if canonical not in self.index:
                continue
            bad = np.flatnonzero(_bad_ids(values) & valid)
            column = _norm_header(self.header[self.index[canonical]])
            for i in bad.tolist():
                value = values[i].as_py()
                problems.append((i, column, value, id_problem(value) or "not a valid id"))
            valid[bad] = False
        no_artist = np.flatnonzero(
            (pc.utf8_length(artist_names).to_numpy(zero_copy_only=False) == 0)
            & (pc.utf8_length(artist_ids).to_numpy(zero_copy_only=False) == 0)
            & valid
        )
        for i in no_artist.tolist():
            problems.append((i, "artist", "", "missing artist"))
        valid[no_artist] = False

        rejections = []
        if problems:
            problems.sort(key=lambda p: p[0])
            lines = self._lines(first_row + np.array([p[0] for p in problems]))
            rejections = [Rejection(int(line), c, v or "", r) for line, (_, c, v, r) in zip(lines, problems)]

        keep = pa.array(np.flatnonzero(valid))
        take = lambda arr: arr.take(keep)  # noqa: E731
        m = len(keep)
        names, artist_names, ext_ids, artist_ids = take(names), take(artist_names), take(ext_ids), take(artist_ids)
        if self.format != FLAGSHIP:
            # Sources without ids: stable ids from the names.
            name_list, artist_list = names.to_pylist(), artist_names.to_pylist()
            ids = ext_ids.to_pylist()
            ext_ids = pa.array([i or derived_id(a, t) for i, a, t in zip(ids, artist_list, name_list)])
            aids = artist_ids.to_pylist()
            artist_ids = pa.array([i if i and len(i) <= 64 else derived_id(i or a) for i, a in zip(aids, artist_list)])
        else:
            long_ids = pc.greater(pc.utf8_length(artist_ids), 64)
            if pc.any(long_ids).as_py():
                artist_ids = pa.array([derived_id(i) if len(i) > 64 else i for i in artist_ids.to_pylist()])
        artist_names = pc.if_else(pc.equal(pc.utf8_length(artist_names), 0), "Unknown artist", artist_names)

        genres_col = col("genres")
        genres = (
            _per_value(take(genres_col), _genres_json, pa.string()) if genres_col is not None else pa.array(["[]"] * m)
        )
        release_col = col("release_date")
        if release_col is not None:
            dates, years = _release(take(release_col))
        else:
            dates, years = pa.nulls(m, pa.date32()), pa.nulls(m, pa.int64())
        explicit_col = col("explicit")
        album_col = col("album")
        if album_col is not None:
            album = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(take(album_col)), 0, 512)
            album = pc.if_else(pc.equal(pc.utf8_length(album), 0), pa.scalar(None, pa.string()), album)
        else:
            album = pa.nulls(m, pa.string())

        def optional(canonical: str, low: float, high: float) -> pa.Array:
            c = col(canonical)
            return _optional_int(take(c) if c is not None else None, m, low, high)

        kept = np.flatnonzero(valid)
        columns = {
            "line": pa.array(self._lines(first_row + kept).astype(np.int64)),
            "external_id": ext_ids,
            "name": pc.utf8_slice_codeunits(names, 0, 512),
            "album": album,
            "artist_external_id": artist_ids,
            "artist_name": pc.utf8_slice_codeunits(artist_names, 0, 512),
            # In the flagship export the genres describe the artist.
            "artist_genres": genres if self.format == FLAGSHIP else pa.array(["[]"] * m),
            "artist_followers": optional("artist_followers", 0, 9e15),
            "artist_popularity": optional("artist_popularity", 0, 100),
            "genres": genres,
            "popularity": optional("popularity", ATTRIBUTES["popularity"].low, ATTRIBUTES["popularity"].high),
            "explicit": _per_value(take(explicit_col), parse_bool, pa.bool_())
            if explicit_col is not None
            else pa.nulls(m, pa.bool_()),
            "release_date": dates,
            "release_year": years,
            "key": optional("key", ATTRIBUTES["key"].low, ATTRIBUTES["key"].high),
            "mode": optional("mode", ATTRIBUTES["mode"].low, ATTRIBUTES["mode"].high),
            "time_signature": optional(
                "time_signature", ATTRIBUTES["time_signature"].low, ATTRIBUTES["time_signature"].high
            ),
        }
        for name in FEATURE_NAMES:
            values = features[name][kept]
            columns[name] = pa.array(np.rint(values).astype(np.int64) if name == "duration_ms" else values)
        table = pa.table({c: columns[c] for c in STAGE_COLUMNS})
        return Batch(table, rows_read=n, rejections=rejections)


# --- content hashes -------------------------------------------------------
#
# A re-import stages only the rows the catalog does not already hold: each
# good row gets two 64-bit hashes of its canonical values (the song's
# columns, and its artist's), stored by the merge beside what it wrote
# (Song.content_hash, Artist.content_hash). They are computed column by
# column with NumPy over Arrow's buffers: no Python object per row.

# Bumped when the canonical values or the hash change: stored hashes of
# another version never match, so the next import compares every row in full.
CONTENT_HASH_VERSION = 1

ARTIST_HASH_COLUMNS = ("artist_external_id", "artist_name", "artist_genres", "artist_followers", "artist_popularity")
# Every staged column of a song but the file's line and its artist's own
# columns (a column staged later is hashed without a second list to edit).
SONG_HASH_COLUMNS = tuple(
    c for c in STAGE_COLUMNS if c != "line" and (c == "artist_external_id" or c not in ARTIST_HASH_COLUMNS)
)
# A song's stored hash is its file row's, artist columns included: a row is
# staged again when either part changes, and rows of one artist that
# disagree about it (the last one wins) stay put once written.
ROW_HASH_COLUMNS = (*SONG_HASH_COLUMNS, *(c for c in ARTIST_HASH_COLUMNS if c not in SONG_HASH_COLUMNS))


_COLUMN_WEIGHTS = mix64(np.arange(5001, 5101, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def _value_hashes(values: pa.Array) -> np.ndarray:
    """A uint64 per value of a numeric, boolean or date column (its bits; nulls apart)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    kind = values.type
    if pa.types.is_null(kind):
        return np.full(len(values), NULL_HASH, np.uint64)
    if pa.types.is_boolean(kind):
        values = values.cast(pa.int8())
    elif pa.types.is_date32(kind):
        values = values.cast(pa.int32())
    filled = values.fill_null(0) if values.null_count else values
    numbers = filled.to_numpy(zero_copy_only=False)
    bits = numbers.view(np.uint64) if numbers.dtype == np.float64 else numbers.astype(np.int64).view(np.uint64)
    bits = mix64(bits)
    if values.null_count:
        bits = np.where(np.asarray(values.is_valid()), bits, NULL_HASH)
    return bits


def _array_key(name: str, values: pa.ChunkedArray) -> tuple:
    """The same array under two names (the flagship's genres are its
    artist's) has the same buffers: hashed once."""
    if values.num_chunks != 1 or any(b is None for b in values.chunk(0).buffers()[1:]):
        return (name,)
    chunk = values.chunk(0)
    return (str(chunk.type), chunk.offset, len(chunk), *(b.address for b in chunk.buffers() if b is not None))


def column_hashes(table: pa.Table, name: str, *, cache: dict | None = None) -> np.ndarray:
    """A uint64 per value of one column (equal values hash alike), kept in `cache`."""
    values = table.column(name)
    key = _array_key(name, values)
    hashes = None if cache is None else cache.get(key)
    if hashes is None:
        string = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        hashes = string_hashes(values) if string else _value_hashes(values)
        if cache is not None:
            cache[key] = hashes
    return hashes


def content_hashes(table: pa.Table, columns: tuple[str, ...], *, cache: dict | None = None) -> np.ndarray:
    """One int64 per row of `table`: a hash of its values in `columns`.

    Equal rows hash alike in every process; a changed value changes the hash
    but for a chance of about 2^-64 per changed row for natural text (not a
    cryptographic hash: a file crafted to collide could be). One changed
    column always changes it: each column's step is a bijection of the
    running hash. `cache` keeps column hashes between calls on the same
    table (the artist id is in both the song's and the artist's).
    """
    cache = {} if cache is None else cache
    h = np.full(table.num_rows, np.uint64(CONTENT_HASH_VERSION), dtype=np.uint64)
    for i, name in enumerate(columns):
        h = (h ^ column_hashes(table, name, cache=cache)) * _COLUMN_WEIGHTS[i]
        h ^= h >> np.uint64(29)
    return mix64(h).view(np.int64)
