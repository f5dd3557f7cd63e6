"""Reading and validating catalog CSVs, with no Django in sight.

The importer streams a file in chunks: each chunk is parsed by the csv
module, its feature columns are validated with vectorised numpy checks, and
the good rows come out as `Batch`es of canonical columns that the service
writes into a staging table. Whole-file problems raise `ImportRejected`.
"""
from __future__ import annotations

import ast
import codecs
import csv
import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .features import FEATURE_NAMES, FEATURES

# Fields of a CSV can be long (genre lists), but not absurdly so.
csv.field_size_limit(1_000_000)


class ImportRejected(Exception):
    """The whole file is refused; nothing of it is stored."""


FLAGSHIP = "flagship"
SPOTIFY = "spotify"
FORMATS = (FLAGSHIP, SPOTIFY)

FLAGSHIP_HEADER = (
    "id_songs,name_song,popularity_songs,duration_ms,explicit,id_artists,release_date,danceability,energy,key,"
    "loudness,mode,speechiness,acousticness,instrumentalness,liveness,valence,tempo,time_signature,followers,"
    "genres,name_artists,popularity_artists"
).split(",")

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
    "artist_name": ("track_artist", "artists", "artist", "artist_name", "artist(s)_name", "artist_names", "name_artists"),
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
    """Good rows of one chunk, column-wise, in STAGE_COLUMNS order."""

    columns: dict[str, list]
    rows_read: int
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns["line"])

    def rows(self) -> Iterator[tuple]:
        return zip(*(self.columns[c] for c in STAGE_COLUMNS))


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
        alt = " / ".join(
            f"{c}: one of {', '.join(SPOTIFY_COLUMNS[c])}" for c in REQUIRED[SPOTIFY]
        )
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


_LIST_ID = re.compile(r"[A-Za-z0-9_\-:.]+")


def parse_artist_id(value: str) -> str:
    """'abc', "['abc', 'def']" -> the first id."""
    value = value.strip()
    if value.startswith("["):
        match = _LIST_ID.search(value[1:])
        return match.group(0) if match else ""
    return value


def parse_genres(value: str) -> list[str]:
    """"['a', 'b']" (Python-style list), '[]', 'a' or 'a; b' -> a list of names."""
    value = value.strip()
    if not value or value == "[]":
        return []
    if value.startswith("["):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = [p.strip(" '\"") for p in value.strip("[]").split(",")]
        if isinstance(parsed, (list, tuple)):
            return [str(g).strip() for g in parsed if str(g).strip()]
        return [str(parsed).strip()]
    return [g.strip() for g in re.split(r"[;|]", value) if g.strip()]


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


def _memo(fn):
    cache: dict = {}

    def wrapper(value):
        try:
            return cache[value]
        except KeyError:
            if len(cache) > 200_000:  # bound memory on files with many distinct values
                cache.clear()
            result = cache[value] = fn(value)
            return result

    return wrapper


def _to_numbers(values: list[str]) -> np.ndarray:
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)


def _optional_ints(values: list[str], low: float, high: float) -> list:
    """Optional integer columns: anything missing or out of range becomes NULL."""
    numbers = _to_numbers(values)
    ok = np.isfinite(numbers) & (numbers >= low) & (numbers <= high)
    rounded = np.where(ok, np.rint(numbers), 0).astype(np.int64).tolist()
    return [r if good else None for r, good in zip(rounded, ok.tolist())]


_NON_FINITE = {"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}


# --- rows ---------------------------------------------------------------


class CatalogReader:
    """Streams a CSV file as validated Batches.

    >>> reader = CatalogReader(path, info)
    >>> for batch in reader.batches(): ...
    """

    def __init__(self, path: Path, info: FileInfo, *, fmt: str = "auto", chunk_rows: int = 20_000):
        self.path = Path(path)
        self.info = info
        self.requested_format = fmt
        self.chunk_rows = chunk_rows
        self.format: str | None = None
        self.index: dict[str, int] = {}
        self.width = 0

    def batches(self) -> Iterator[Batch]:
        with open(self.path, encoding=self.info.encoding, newline="") as fh:
            reader = csv.reader(fh, strict=False)
            try:
                header = next(reader)
            except StopIteration:
                raise ImportRejected("The file is empty.") from None
            except csv.Error as exc:
                raise ImportRejected(f"The header is not valid CSV: {exc}.") from None
            if not any(h.strip() for h in header):
                raise ImportRejected("The first line is empty: expected a header row with column names.")
            self.format, self.index = detect_format(header, self.requested_format)
            self.width = len(header)
            chunk: list[list[str]] = []
            lines: list[int] = []
            seen_rows = 0
            try:
                for row in reader:
                    if not row:
                        continue  # blank line
                    chunk.append(row)
                    lines.append(reader.line_num)
                    if len(chunk) >= self.chunk_rows:
                        seen_rows += len(chunk)
                        yield self._validate(chunk, lines)
                        chunk, lines = [], []
            except csv.Error as exc:
                raise ImportRejected(f"Line {reader.line_num}: the file is not valid CSV ({exc}).") from None
            if chunk:
                seen_rows += len(chunk)
                yield self._validate(chunk, lines)
            if seen_rows == 0:
                raise ImportRejected("The file has a header but no data rows.")

    def _validate(self, rows: list[list[str]], lines: list[int]) -> Batch:
        rejections: list[Rejection] = []
        width = self.width
        # Rows with the wrong number of fields cannot be trusted column-wise.
        good_rows: list[list[str]] = []
        good_lines: list[int] = []
        for row, line in zip(rows, lines):
            if len(row) == width:
                good_rows.append(row)
                good_lines.append(line)
            else:
                kind = "too many" if len(row) > width else "too few"
                rejections.append(
                    Rejection(line, "*", ",".join(row)[:80], f"{kind} fields: {len(row)} where the header has {width}")
                )
        n = len(good_rows)
        if n == 0:
            return Batch({c: [] for c in STAGE_COLUMNS}, rows_read=len(rows), rejections=rejections)
        raw = list(zip(*good_rows))  # column-wise tuples of strings
        get = lambda canonical: raw[self.index[canonical]] if canonical in self.index else None  # noqa: E731

        valid = np.ones(n, dtype=bool)
        reasons: list[tuple[int, Rejection]] = []
        features: dict[str, np.ndarray] = {}
        for feat in FEATURES:
            strings = get(feat.name)
            numbers = _to_numbers(list(strings))
            finite = np.isfinite(numbers)
            if feat.low_inclusive:
                in_range = (numbers >= feat.low) & (numbers <= feat.high)
            else:
                in_range = (numbers > feat.low) & (numbers < feat.high)
            bad = ~(finite & in_range)
            for i in np.flatnonzero(bad & valid).tolist():
                value = strings[i].strip()
                if not value:
                    reason = "missing value"
                elif value.lower() in _NON_FINITE:
                    reason = f"not a finite number ({value})"
                elif not finite[i]:
                    reason = f"not a number ({value!r})"
                else:
                    interval = (
                        f"{feat.low:g} to {feat.high:g}" if feat.low_inclusive else f"above {feat.low:g} and below {feat.high:g}"
                    )
                    reason = f"out of range ({value}); expected {interval}{' ' + feat.unit if feat.unit else ''}"
                reasons.append((i, Rejection(good_lines[i], feat.name, value, reason)))
            valid &= ~bad
            features[feat.name] = numbers

        names = [s.strip() for s in get("name")]
        artist_names_raw = get("artist_name")
        artist_names = [s.strip() for s in artist_names_raw] if artist_names_raw else [""] * n
        if self.format == FLAGSHIP:
            ext_ids = [s.strip() for s in get("external_id")]
            artist_ids = [parse_artist_id(s) for s in get("artist_external_id")]
        else:
            ext_col = get("external_id")
            ext_ids = [s.strip() for s in ext_col] if ext_col else [""] * n
            art_col = get("artist_external_id")
            artist_ids = [parse_artist_id(s) for s in art_col] if art_col else [""] * n
        for i in range(n):
            if not valid[i]:
                continue
            problem = None
            if not names[i]:
                problem = ("name", "", "missing title")
            elif self.format == FLAGSHIP and not ext_ids[i]:
                problem = ("id_songs", "", "missing song id")
            elif not artist_names[i] and not artist_ids[i]:
                problem = ("artist", "", "missing artist")
            elif len(ext_ids[i]) > 64:
                problem = ("external_id", ext_ids[i], "id longer than 64 characters")
            if problem:
                valid[i] = False
                reasons.append((i, Rejection(good_lines[i], *problem)))
            else:
                if not ext_ids[i]:
                    ext_ids[i] = derived_id(artist_names[i], names[i])
                if not artist_ids[i]:
                    artist_ids[i] = derived_id(artist_names[i])
                elif len(artist_ids[i]) > 64:
                    artist_ids[i] = derived_id(artist_ids[i])
                if not artist_names[i]:
                    artist_names[i] = "Unknown artist"
        reasons.sort(key=lambda item: item[0])
        rejections.extend(r for _, r in reasons)

        keep = np.flatnonzero(valid)
        take = keep.tolist()
        pick = lambda seq: [seq[i] for i in take]  # noqa: E731

        genres_col = get("genres")
        genres_json = [_genres_json(genres_col[i]) for i in take] if genres_col else ["[]"] * len(take)
        release_col = get("release_date")
        dates: list = []
        years: list = []
        if release_col:
            for i in take:
                d, y = _release(release_col[i])
                dates.append(d)
                years.append(y)
        else:
            dates = years = [None] * len(take)

        def optional(canonical: str, low: float, high: float) -> list:
            col = get(canonical)
            return _optional_ints(pick(col), low, high) if col else [None] * len(take)

        explicit_col = get("explicit")
        album_col = get("album")
        columns: dict[str, list] = {
            "line": pick(good_lines),
            "external_id": pick(ext_ids),
            "name": [v[:512] for v in pick(names)],
            "album": [v.strip()[:512] or None for v in pick(album_col)] if album_col else [None] * len(take),
            "artist_external_id": pick(artist_ids),
            "artist_name": [v[:512] for v in pick(artist_names)],
            # In the flagship export the genres describe the artist.
            "artist_genres": genres_json if self.format == FLAGSHIP else ["[]"] * len(take),
            "artist_followers": optional("artist_followers", 0, 9e15),
            "artist_popularity": optional("artist_popularity", 0, 100),
            "genres": genres_json,
            "popularity": optional("popularity", 0, 100),
            "explicit": [_bool(explicit_col[i]) for i in take] if explicit_col else [None] * len(take),
            "release_date": dates,
            "release_year": years,
            "key": optional("key", 0, 11),
            "mode": optional("mode", 0, 1),
            "time_signature": optional("time_signature", 0, 12),
        }
        for name in FEATURE_NAMES:
            values = features[name][keep]
            columns[name] = np.rint(values).astype(np.int64).tolist() if name == "duration_ms" else values.tolist()
        return Batch(columns, rows_read=len(rows), rejections=rejections)


@_memo
def _genres_json(value: str) -> str:
    import json

    return json.dumps(parse_genres(value), ensure_ascii=False)


_release = _memo(parse_release)
_bool = _memo(parse_bool)
