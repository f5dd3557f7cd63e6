"""Saved playlists (services) and playlist files (M3U, CSV, JSON, XSPF).

Playlists hold songs, not clusters: a retrain relabels songs but never
touches playlist items. `playlist_export` is shared by saved playlists and
the generated ones (cluster playlists, radio, recommendations).

A generated playlist may be saved with the parameters that made it
(``params``, checked by :func:`generator_params_clean`); then
:func:`playlist_regenerate` makes it again on the current catalog and
active model, with its owner's blocklist, keeping its name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from urllib.parse import quote

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from songs.features import ATTRIBUTES, FEATURE_NAMES
from songs.labels import labels_attach
from songs.models import Song
from songs.selectors import song_record_get

from . import similarity
from .errors import SimilarityError
from .exporting import safe_cell
from .ml.variety import SEED_MAX
from .models import Cluster, Playlist, PlaylistItem, TrainingRun
from .selectors import blocklist_excludes

MAX_SONGS = 1000
DESCRIPTION_MAX = 5000
# The playlist file formats and how pages label them: every export, download
# link and API choice derives from this table.
FILE_FORMATS: dict[str, str] = {"m3u": "M3U", "csv": "CSV", "json": "JSON", "xspf": "XSPF"}
EXPORT_FORMATS: tuple[str, ...] = tuple(FILE_FORMATS)
XSPF_NS = "http://xspf.org/ns/0/"

# duration_ms is one of the ten features; it comes once, after album.
EXPORT_COLUMNS = [
    "id",
    "title",
    "artist",
    "album",
    "duration_ms",
    *[f for f in FEATURE_NAMES if f != "duration_ms"],
    "cluster",
]

# Characters XML 1.0 cannot carry at all (escaping does not help).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# What may not appear inside one M3U line: every C0 and C1 control (CR, LF,
# tab, VT, FF, the separators \x1c-\x1e, NEL U+0085, …), DEL, and the Unicode
# line and paragraph separators. Each run becomes one space.
_LINE_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class PlaylistError(ValueError):
    """A playlist write refused as a whole; `field` names the input at fault."""

    def __init__(self, message: str, *, field: str = "songs"):
        super().__init__(message)
        self.field = field


class UnknownSongsError(PlaylistError):
    def __init__(self, unknown: list[str]):
        shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        super().__init__(f"Unknown song ids: {shown}.")
        self.unknown = unknown


# --- reads -------------------------------------------------------------------


def playlists_visible(*, user) -> QuerySet[Playlist]:
    """Public playlists, plus the user's own when signed in."""
    qs = Playlist.objects.select_related("owner")
    if user is None or not user.is_authenticated:
        return qs.filter(is_public=True)
    return qs.filter(Q(is_public=True) | Q(owner=user))


def playlist_songs(*, playlist: Playlist) -> list[Song]:
    """The playlist's songs in order, artist selected and active labels attached."""
    items = PlaylistItem.objects.filter(playlist=playlist).select_related("song__artist").order_by("position")
    return labels_attach(item.song for item in items)


# --- writes ------------------------------------------------------------------


def songs_resolve(*, song_ids: Sequence[str]) -> list[Song]:
    """Songs for external ids, in the given order (repeats allowed).

    Raises UnknownSongsError naming every id that is not in the catalog.
    """
    if isinstance(song_ids, str):
        raise PlaylistError("songs must be a list of song ids, not one string.")
    ids = [str(i) for i in song_ids]
    if len(ids) > MAX_SONGS:
        raise PlaylistError(f"A playlist holds at most {MAX_SONGS:,} songs ({len(ids):,} given).")
    found: dict[str, Song] = {}
    distinct = list(dict.fromkeys(ids))
    for start in range(0, len(distinct), 500):  # under SQLite's bound-parameter limit
        chunk = distinct[start : start + 500]
        found.update((s.external_id, s) for s in Song.objects.filter(external_id__in=chunk).select_related("artist"))
    unknown = [i for i in distinct if i not in found]
    if unknown:
        raise UnknownSongsError(unknown)
    return [found[i] for i in ids]


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise PlaylistError("A playlist needs a name.", field="name")
    if len(name) > Playlist._meta.get_field("name").max_length:
        raise PlaylistError(
            f"A name has at most {Playlist._meta.get_field('name').max_length} characters.", field="name"
        )
    return name


def _clean_description(description: str | None) -> str:
    description = description or ""
    if len(description) > DESCRIPTION_MAX:
        raise PlaylistError(f"A description has at most {DESCRIPTION_MAX:,} characters.", field="description")
    return description


def _clean_source(source: str) -> str:
    if source not in Playlist.Source.values:
        raise PlaylistError(
            f"Unknown source {source!r}: choose one of {', '.join(Playlist.Source.values)}.", field="source"
        )
    return source


# --- generated playlists: their parameters, and making them again ------------------------

GENERATED_SOURCES = (
    Playlist.Source.RADIO,
    Playlist.Source.RECOMMENDATIONS,
    Playlist.Source.PATH,
    Playlist.Source.CLUSTER,
)
# Per source: parameter -> (kind, default, low, high); "required" defaults must be given.
_REQUIRED = object()
# The discovery filters every generator takes (the API's genres / exclude_*), at most 100 items each.
FILTER_PARAMS = ("genres", "exclude_genres", "exclude_artists", "exclude_songs")
_FILTERS = dict.fromkeys(FILTER_PARAMS, ("ids", None, 0, 100))
GENERATOR_PARAMS: dict[str, dict[str, tuple]] = {
    "radio": {
        "song": ("id", _REQUIRED, None, None),
        "limit": ("int", 25, 1, 500),
        "variety": ("float", 0.0, 0.0, 1.0),
        "seed": ("int", None, 0, SEED_MAX),
        "max_per_artist": ("int", None, 1, 100),
        **_FILTERS,
    },
    "recommendations": {
        "seed_songs": ("ids", [], None, None),
        "seed_artists": ("ids", [], None, None),
        "seed_genres": ("ids", [], None, None),
        "limit": ("int", 20, 1, 100),
        **{
            f"{kind}_{name}": ("float", None, a.low, a.high)
            for name, a in ATTRIBUTES.items()
            for kind in ("min", "max", "target")
        },
        "max_per_artist": ("int", None, 1, 100),
        **_FILTERS,
    },
    "path": {
        "from": ("id", _REQUIRED, None, None),
        "to": ("id", _REQUIRED, None, None),
        "length": ("int", 10, 3, 50),
        **_FILTERS,
    },
    "cluster": {
        "cluster": ("int", _REQUIRED, 1, 2**63 - 1),
        "limit": ("int", 50, 1, 500),
        "max_per_artist": ("int", 2, 1, 100),
        **_FILTERS,
    },
}


def _param_value(source: str, name: str, value, kind: str, low, high):
    where = f"params.{name}"
    if kind == "id":
        if not isinstance(value, str) or not value.strip() or len(value) > 512:
            raise PlaylistError(f"{where} must be a song id.", field="params")
        return value.strip()
    if kind == "ids":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            raise PlaylistError(f"{where} must be a list of ids (or one comma-separated string).", field="params")
        if high is not None and len(items) > high:
            raise PlaylistError(f"{where} has {len(items)} items; at most {high}.", field="params")
        return [i.strip() for i in items]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlaylistError(f"{where} must be a number, got {type(value).__name__}.", field="params")
    if isinstance(value, float) and not math.isfinite(value):
        raise PlaylistError(f"{where} must be a finite number.", field="params")
    if kind == "int" and isinstance(value, float) and not value.is_integer():
        raise PlaylistError(f"{where} must be a whole number, got {value!r:.40}.", field="params")
    if not low <= value <= high:  # exact for ints of any size
        raise PlaylistError(f"{where} must be from {low:g} to {high:g}, got {value!r:.40}.", field="params")
    return int(value) if kind == "int" else float(value)


def generator_params_clean(*, source: str, params) -> dict:
    """The parameters of a generated playlist, checked and with their defaults
    (:data:`GENERATOR_PARAMS`: the same names as the API's query parameters;
    a cluster by id). PlaylistError naming the parameter at fault."""
    if source not in GENERATED_SOURCES:
        raise PlaylistError(
            f"Only generated playlists ({', '.join(GENERATED_SOURCES)}) have parameters; this one is {source!r}.",
            field="params",
        )
    if not isinstance(params, dict):
        raise PlaylistError("params must be a JSON object.", field="params")
    spec = GENERATOR_PARAMS[source]
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise PlaylistError(
            f"Unknown parameter(s) for a {source} playlist: {', '.join(n[:40] for n in unknown[:10])}; "
            f"known: {', '.join(n for n in spec if n == 'max_per_artist' or n[:4] not in ('min_', 'max_', 'targ'))}"
            + (", min_/max_/target_<attribute>" if source == "recommendations" else "")
            + ".",
            field="params",
        )
    out = {}
    for name, (kind, default, low, high) in spec.items():
        value = params.get(name)
        if value is None:
            if default is _REQUIRED:
                raise PlaylistError(f"params.{name} is required for a {source} playlist.", field="params")
            if default is not None:
                out[name] = default
            continue
        out[name] = _param_value(source, name, value, kind, low, high)
    if source == "recommendations":
        seeds = sum(len(out[n]) for n in ("seed_songs", "seed_artists", "seed_genres"))
        if not 1 <= seeds <= similarity.MAX_SEEDS:
            raise PlaylistError(
                f"Give 1 to {similarity.MAX_SEEDS} seeds in all (params.seed_songs, seed_artists, seed_genres); "
                f"got {seeds}.",
                field="params",
            )
        for name in ATTRIBUTES:
            low, high = out.get(f"min_{name}"), out.get(f"max_{name}")
            if low is not None and high is not None and low > high:
                raise PlaylistError(
                    f"params.min_{name} ({low:g}) is greater than max_{name} ({high:g}).", field="params"
                )
    return out


def _current_cluster(cluster_id: int) -> Cluster:
    """The cluster, or the active run's cluster of its lineage after a retrain."""
    cluster = Cluster.objects.select_related("run").filter(pk=cluster_id).first()
    if cluster is None:
        raise PlaylistError(f"Cluster {cluster_id} no longer exists.", field="params")
    active = TrainingRun.objects.active()
    if active is None or cluster.run_id == active.pk:
        return cluster
    heir = Cluster.objects.filter(run=active, lineage=cluster.lineage).first() if cluster.lineage is not None else None
    if heir is None:
        raise PlaylistError(
            f"Cluster “{cluster.name}” (run #{cluster.run_id}) has no successor in the active model (run #{active.pk}).",
            field="params",
        )
    return heir


def _song_or_error(external_id: str, role: str):
    record = song_record_get(external_id=external_id)
    if record is None:
        raise PlaylistError(f"The {role} song {external_id!r} is no longer in the catalog.", field="params")
    return record


def generated_songs(*, source: str, params: dict, user=None) -> list[str]:
    """The external ids a generator gives for cleaned ``params`` now (current
    catalog, active model), leaving out ``user``'s blocklist. Raises
    PlaylistError when its songs or cluster are gone or the index refuses the
    request; a missing model raises the engine's TrainingError / ArtifactError."""
    # The saved filters, the owner's blocklist joining the exclude_* ones (as the API does).
    blocks = blocklist_excludes(user=user)
    excludes = {"genres": params.get("genres", [])}
    for name, blocked in blocks.items():
        excludes[name] = sorted(set(params.get(name, [])) | set(blocked))
    if "max_per_artist" in params:
        excludes["max_per_artist"] = params["max_per_artist"]
    try:
        if source == Playlist.Source.RADIO:
            songs = similarity.song_radio(
                song=_song_or_error(params["song"], "seed"),
                limit=params["limit"],
                variety=params["variety"],
                seed=params.get("seed"),
                **excludes,
            )
        elif source == Playlist.Source.RECOMMENDATIONS:
            bounds = {
                name: (params.get(f"min_{name}"), params.get(f"max_{name}"))
                for name in ATTRIBUTES
                if params.get(f"min_{name}") is not None or params.get(f"max_{name}") is not None
            }
            targets = {name: params[f"target_{name}"] for name in ATTRIBUTES if f"target_{name}" in params}
            songs = similarity.recommendations_get(
                seed_songs=params["seed_songs"],
                seed_artists=params["seed_artists"],
                seed_genres=params["seed_genres"],
                limit=params["limit"],
                bounds=bounds,
                targets=targets,
                **excludes,
            )["tracks"]
        elif source == Playlist.Source.PATH:
            songs = similarity.song_path(
                source=_song_or_error(params["from"], "first"),
                target=_song_or_error(params["to"], "last"),
                length=params["length"],
                **excludes,
            )["songs"]
        else:
            songs = similarity.cluster_playlist(
                cluster=_current_cluster(params["cluster"]),
                limit=params["limit"],
                **excludes,
            )
    except SimilarityError as exc:
        raise PlaylistError(f"The {source} cannot be made again: {exc}", field="params") from None
    return [song["id"] for song in songs]


def playlist_regenerate(*, playlist: Playlist) -> Playlist:
    """Make a generated playlist again from its saved parameters on the current
    catalog and active model (its owner's blocklist applied): the songs are
    replaced, the name, description and share link kept."""
    if playlist.source not in GENERATED_SOURCES or not playlist.params:
        raise PlaylistError(
            "Only a generated playlist saved with its parameters can be made again "
            f"(this one is {playlist.get_source_display().lower()}"
            f"{'' if playlist.params else ', without parameters'}).",
            field="params",
        )
    params = generator_params_clean(source=playlist.source, params=playlist.params)
    song_ids = generated_songs(source=playlist.source, params=params, user=playlist.owner)
    songs = songs_resolve(song_ids=song_ids)
    with transaction.atomic():
        _items_replace(playlist, songs)
        playlist.regenerated_at = timezone.now()
        playlist.save(update_fields=["regenerated_at", "updated_at"])
    return playlist


def _items_replace(playlist: Playlist, songs: list[Song]) -> None:
    with transaction.atomic():
        # Lock the playlist row: two concurrent rewrites would otherwise
        # collide on (playlist, position).
        Playlist.objects.select_for_update().filter(pk=playlist.pk).first()
        PlaylistItem.objects.filter(playlist=playlist).delete()
        PlaylistItem.objects.bulk_create(
            [PlaylistItem(playlist=playlist, song=song, position=i) for i, song in enumerate(songs)],
            batch_size=500,
        )


def playlist_songs_set(*, playlist: Playlist, song_ids: Sequence[str]) -> list[Song]:
    """Replace the playlist's songs with `song_ids`, in that order; all or nothing."""
    songs = songs_resolve(song_ids=song_ids)
    with transaction.atomic():
        _items_replace(playlist, songs)
        playlist.save(update_fields=["updated_at"])
    return songs


def playlist_create(
    *,
    owner,
    name: str,
    song_ids: Sequence[str] = (),
    description: str = "",
    is_public: bool = False,
    source: str = Playlist.Source.MANUAL,
    params: dict | None = None,
) -> Playlist:
    """A new playlist; ``params``: what generated it (see :func:`generator_params_clean`)."""
    name = _clean_name(name)
    description = _clean_description(description)
    source = _clean_source(source)
    params = generator_params_clean(source=source, params=params) if params else {}
    songs = songs_resolve(song_ids=song_ids)  # refuse before writing anything
    with transaction.atomic():
        playlist = Playlist.objects.create(
            owner=owner, name=name, description=description, is_public=is_public, source=source, params=params
        )
        _items_replace(playlist, songs)
    return playlist


def playlist_update(
    *,
    playlist: Playlist,
    name: str | None = None,
    description: str | None = None,
    is_public: bool | None = None,
    source: str | None = None,
    song_ids: Sequence[str] | None = None,
    params: dict | None = None,
) -> Playlist:
    """Change the given fields; None leaves a field as it is. A playlist
    turned manual forgets its parameters; an empty ``params`` clears them."""
    if params is not None:
        new_source = _clean_source(source) if source is not None else playlist.source
        playlist.params = generator_params_clean(source=new_source, params=params) if params else {}
    elif source is not None and source != playlist.source:
        playlist.params = {}  # parameters of another generator
    if name is not None:
        playlist.name = _clean_name(name)
    if description is not None:
        playlist.description = _clean_description(description)
    if is_public is not None:
        playlist.is_public = is_public
    if source is not None:
        playlist.source = _clean_source(source)
    songs = None if song_ids is None else songs_resolve(song_ids=song_ids)
    with transaction.atomic():
        playlist.save()
        if songs is not None:
            _items_replace(playlist, songs)
    return playlist


def playlist_share_rotate(*, playlist: Playlist) -> Playlist:
    """A new share link for the playlist; the old one stops working at once."""
    playlist.share_id = uuid.uuid4()
    playlist.save(update_fields=["share_id", "updated_at"])
    return playlist


def playlist_size(*, playlist: Playlist) -> int:
    return playlist.items.count()


def playlist_delete(*, playlist: Playlist) -> None:
    playlist.delete()


# --- export ------------------------------------------------------------------


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text or "").strip()


def _xml_text(text) -> str:
    return _XML_INVALID.sub("", "" if text is None else str(text))


def _song_url(base_url: str, song: Song) -> str:
    return f"{base_url.rstrip('/')}/songs/{quote(song.external_id, safe='')}/"


def _cluster_names(songs: list) -> dict[int, str]:
    """Cluster names for the songs (their active labels, read in one query when not attached)."""
    labels_attach(song for song in songs if "_label" not in song.__dict__)
    return {song.cluster_id: song.cluster_name for song in songs if song.cluster_id is not None}


def _song_row(song: Song, clusters: dict[int, str]) -> dict:
    return {
        "id": song.external_id,
        "title": song.name,
        "artist": song.artist.name,
        "album": song.album or "",
        "duration_ms": song.duration_ms,
        **{f: getattr(song, f) for f in FEATURE_NAMES if f != "duration_ms"},
        "cluster": clusters.get(song.cluster_id, "") if song.cluster_id is not None else "",
    }


def _export_m3u(title: str, songs: list, base_url: str) -> bytes:
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(title)}"]
    for song in songs:
        seconds = round(song.duration_ms / 1000) if song.duration_ms else -1
        lines.append(f"#EXTINF:{seconds},{_one_line(song.artist.name)} - {_one_line(song.name)}")
        # The catalog has audio features, not audio files: each entry points
        # at the song's page on this site, where a player or a person can
        # resolve it to a real file or stream.
        lines.append(_song_url(base_url, song))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _export_csv(songs: list, clusters: dict[int, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    text_columns = {"id", "title", "artist", "album", "cluster"}
    for song in songs:
        row = _song_row(song, clusters)
        writer.writerow([safe_cell(row[c]) if c in text_columns else row[c] for c in EXPORT_COLUMNS])
    return out.getvalue().encode("utf-8")


def _export_json(title: str, songs: list, clusters: dict[int, str]) -> bytes:
    body = {"title": title, "songs": [_song_row(song, clusters) for song in songs]}
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")


def _export_xspf(title: str, songs: list, base_url: str) -> bytes:
    def sub(parent: ET.Element, tag: str, text) -> ET.Element:
        element = ET.SubElement(parent, tag)
        element.text = _xml_text(text)
        return element

    # The namespace as a plain attribute: ElementTree cannot write a default
    # namespace next to the unqualified `version` attribute.
    root = ET.Element("playlist", {"version": "1", "xmlns": XSPF_NS})
    sub(root, "title", title)
    track_list = ET.SubElement(root, "trackList")
    # Children in the order the XSPF 1 schema lists them.
    for song in songs:
        track = ET.SubElement(track_list, "track")
        sub(track, "location", _song_url(base_url, song))
        sub(track, "identifier", f"urn:musiccluster:song:{quote(song.external_id, safe='')}")
        sub(track, "title", song.name)
        sub(track, "creator", song.artist.name)
        if song.album:
            sub(track, "album", song.album)
        if song.duration_ms and song.duration_ms > 0:
            sub(track, "duration", int(song.duration_ms))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def playlist_export(*, title: str, songs: list, fmt: str, base_url: str = "") -> tuple[bytes, str, str]:
    """A playlist file: (content, content type, file name).

    `songs` are Song objects with their artist selected; `base_url` (e.g.
    "https://music.example.org") makes the song locations absolute.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown playlist format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}.")
    stem = slugify(title) or "playlist"
    if fmt == "m3u":
        # .m3u8 tells players the file is UTF-8 (titles may be in any script).
        return _export_m3u(title, songs, base_url), "audio/x-mpegurl; charset=utf-8", f"{stem}.m3u8"
    if fmt == "xspf":
        return _export_xspf(title, songs, base_url), "application/xspf+xml", f"{stem}.xspf"
    clusters = _cluster_names(songs)
    if fmt == "csv":
        return _export_csv(songs, clusters), "text/csv; charset=utf-8", f"{stem}.csv"
    return _export_json(title, songs, clusters), "application/json", f"{stem}.json"


def playlist_download(*, request, title: str, songs: list, fmt: str):
    """A playlist file as an attachment (saved, radio and cluster playlists alike)."""
    from django.http import HttpResponse
    from django.utils.http import content_disposition_header

    content, content_type, filename = playlist_export(
        title=title, songs=songs, fmt=fmt, base_url=request.build_absolute_uri("/").rstrip("/")
    )
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
