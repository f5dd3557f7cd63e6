"""Saved playlists: the public list and yours, a playlist with its songs
and files, editing and deleting (owners only), share links."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from .. import playlists, selectors
from ..errors import ArtifactError, TrainingError
from .common import cluster_colour, feature_display

if TYPE_CHECKING:  # annotations only: views reach models through selectors
    from ..models import Playlist

PLAYLISTS_PER_PAGE = 50
MINE_SHOWN = 100


def export_links(base: str, extra: str = "") -> list[dict]:
    """A download link per playlist file format."""
    return [
        {"fmt": fmt, "label": label, "url": f"{base}?{extra}fmt={fmt}"} for fmt, label in playlists.FILE_FORMATS.items()
    ]


@require_http_methods(["GET", "HEAD", "POST"])
def playlist_list(request: HttpRequest) -> HttpResponse:
    """Public playlists for everyone; your own (private ones too) when signed in; POST creates an empty one."""
    error, status = None, 200
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            playlist = playlists.playlist_create(
                owner=request.user,
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                is_public=request.POST.get("is_public") == "on",
            )
        except playlists.PlaylistError as exc:
            error, status = str(exc), 400
        else:
            messages.success(request, f"Created “{playlist.name}”: add songs below.")
            return redirect("clustering:playlist", pk=playlist.pk)
    mine = []
    if request.user.is_authenticated:
        mine = selectors.playlists_of(user=request.user, limit=MINE_SHOWN + 1)
    public = Paginator(selectors.playlists_public(), PLAYLISTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "clustering/playlists.html",
        {
            "nav": "playlists",
            "mine": mine[:MINE_SHOWN],
            "mine_more": len(mine) > MINE_SHOWN,
            "public": public,
            "error": error,
            "new_name": request.POST.get("name", "") if error else "",
        },
        status=status,
    )


def _total_length(ms: int) -> str:
    minutes = round(ms / 60_000)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _playlist_page(
    request: HttpRequest,
    playlist: Playlist,
    *,
    shared: bool,
    error: str | None = None,
    status: int = 200,
    posted: dict | None = None,
) -> HttpResponse:
    songs = playlists.playlist_songs(playlist=playlist)
    run = selectors.active_run()
    # Only clusters of the active run get a badge (a song may still carry an older label).
    colours = {c.pk: cluster_colour(c.label) for c in selectors.run_clusters(run)}
    for song in songs:
        song.length = feature_display("duration_ms", song.duration_ms)
        song.colour = colours.get(song.cluster_id)
    is_owner = request.user.is_authenticated and playlist.owner_id == request.user.pk
    if shared:
        exports = export_links(f"/api/playlists/shared/{playlist.share_id}/export/")
    else:
        exports = export_links(f"/api/playlists/{playlist.pk}/export/")
    return render(
        request,
        "clustering/playlist.html",
        {
            "nav": "playlists",
            "playlist": playlist,
            "songs": songs,
            "duration": _total_length(sum(s.duration_ms or 0 for s in songs)) if songs else None,
            "is_owner": is_owner,
            "can_edit": is_owner and not shared,
            "can_regenerate": is_owner
            and not shared
            and bool(playlist.params)
            and playlist.source in playlists.GENERATED_SOURCES,
            "shared": shared,
            # The share link is shown to the owner only (a visitor of a public list must not get it).
            "share_url": request.build_absolute_uri(f"/playlists/shared/{playlist.share_id}/") if is_owner else None,
            "exports": exports,
            "error": error,
            "form": posted
            or {"name": playlist.name, "description": playlist.description, "is_public": playlist.is_public},
            "songs_json": json.dumps([s.external_id for s in songs]),
            "page_data": {"id": playlist.pk, "can_edit": is_owner and not shared},
        },
        status=status,
    )


def _posted_song_ids(raw: str | None) -> list[str] | None:
    """The song ids of the edit form (a JSON list kept by static/js/playlist.js); None keeps the songs."""
    if raw is None or not raw.strip():
        return None
    try:
        ids = json.loads(raw)
    except ValueError:
        raise playlists.PlaylistError(
            "The song list of the form is not valid: reload the page and try again."
        ) from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise playlists.PlaylistError("The song list of the form is not valid: reload the page and try again.")
    return ids


def _owned_playlist(request: HttpRequest, pk: int) -> Playlist:
    """The playlist for a write: 404 when the user cannot see it, 403 when it is not theirs."""
    playlist = get_object_or_404(playlists.playlists_visible(user=request.user), pk=pk)
    if not (request.user.is_authenticated and playlist.owner_id == request.user.pk):
        raise PermissionDenied("Only the playlist's owner may change it.")
    return playlist


@require_http_methods(["GET", "HEAD", "POST"])
def playlist_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A playlist (public, or yours) with its songs and exports; its owner edits it here (POST)."""
    if request.method != "POST":
        playlist = get_object_or_404(playlists.playlists_visible(user=request.user), pk=pk)
        return _playlist_page(request, playlist, shared=False)
    playlist = _owned_playlist(request, pk)
    posted = {
        "name": request.POST.get("name", ""),
        "description": request.POST.get("description", ""),
        "is_public": request.POST.get("is_public") == "on",
    }
    try:
        playlists.playlist_update(
            playlist=playlist,
            name=posted["name"],
            description=posted["description"],
            is_public=posted["is_public"],
            song_ids=_posted_song_ids(request.POST.get("songs")),
        )
    except playlists.PlaylistError as exc:
        playlist.refresh_from_db()
        return _playlist_page(request, playlist, shared=False, error=str(exc), status=400, posted=posted)
    messages.success(request, "Changes saved.")
    return redirect("clustering:playlist", pk=playlist.pk)


@require_http_methods(["POST"])
def playlist_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a generated playlist again from its saved parameters (the owner only)."""
    playlist = _owned_playlist(request, pk)
    try:
        playlists.playlist_regenerate(playlist=playlist)
    except playlists.PlaylistError as exc:
        messages.error(request, str(exc))
    except (TrainingError, ArtifactError) as exc:
        messages.error(request, f"The playlist cannot be made again right now: {exc}")
    else:
        count = playlists.playlist_size(playlist=playlist)
        messages.success(request, f"Made again on the current catalog: {count} song{'s' if count != 1 else ''}.")
    return redirect("clustering:playlist", pk=playlist.pk)


@require_http_methods(["POST"])
def playlist_share_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """A new share link (the owner only); the old one stops working."""
    playlist = _owned_playlist(request, pk)
    playlists.playlist_share_rotate(playlist=playlist)
    messages.success(request, "New share link made: the old link no longer opens this playlist.")
    return redirect("clustering:playlist", pk=playlist.pk)


@require_http_methods(["GET", "HEAD", "POST"])
def playlist_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Asks first (GET), deletes on POST; the owner only."""
    playlist = _owned_playlist(request, pk)
    if request.method == "POST":
        name = playlist.name
        playlists.playlist_delete(playlist=playlist)
        messages.success(request, f"Deleted “{name}”.")
        return redirect("clustering:playlists")
    return render(
        request,
        "clustering/playlist_delete.html",
        {
            "nav": "playlists",
            "playlist": playlist,
            "count": playlists.playlist_size(playlist=playlist),
        },
    )


def playlist_shared(request: HttpRequest, share_id) -> HttpResponse:
    """A playlist by its share link: anyone holding the link reads it, public or not."""
    playlist = selectors.playlist_by_share_id(share_id=share_id)
    if playlist is None:
        raise Http404("No playlist with this share link.")
    return _playlist_page(request, playlist, shared=True)
