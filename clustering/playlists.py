"""Saved playlists (services) and playlist files (M3U, CSV, JSON, XSPF).

Playlists hold songs, not clusters: a retrain relabels songs but never
touches playlist items. `playlist_export` is shared by saved playlists and
the generated ones (cluster playlists, radio, recommendations).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from urllib.parse import quote

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.text import slugify

from songs.features import FEATURE_NAMES
from songs.models import Song

from .exporting import safe_cell
from .models import Cluster, Playlist, PlaylistItem

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
    """The playlist's songs in order, artist and cluster selected."""
    items = (
        PlaylistItem.objects.filter(playlist=playlist)
        .select_related("song__artist", "song__cluster")
        .order_by("position")
    )
    return [item.song for item in items]


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
) -> Playlist:
    name = _clean_name(name)
    description = _clean_description(description)
    source = _clean_source(source)
    songs = songs_resolve(song_ids=song_ids)  # refuse before writing anything
    with transaction.atomic():
        playlist = Playlist.objects.create(
            owner=owner, name=name, description=description, is_public=is_public, source=source
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
) -> Playlist:
    """Change the given fields; None leaves a field as it is."""
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
    """Cluster names for the songs, without a query per song."""
    names: dict[int, str] = {}
    missing = set()
    for song in songs:
        if song.cluster_id is None:
            continue
        cached = song._state.fields_cache.get("cluster")
        if cached is not None:
            names[song.cluster_id] = cached.name
        else:
            missing.add(song.cluster_id)
    if missing:
        names.update(Cluster.objects.filter(pk__in=missing).values_list("id", "name"))
    return names


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
