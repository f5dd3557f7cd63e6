"""Server-rendered pages of the clustering: a cluster, live prediction, training runs."""
from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from songs import selectors
from songs.features import FEATURES
from songs.views import (
    active_clusters,
    cluster_colour,
    clusters_json,
    feature_display,
    features_json,
    model_state,
    run_summary,
)

from . import playlists
from .models import Cluster, Playlist, TrainingRun
from .services import active_run

# Slider ranges that cover real music; the number inputs accept the whole
# range the API does (songs.features).
SLIDER_RANGES = {"loudness": (-40.0, 2.0, 0.1), "tempo": (40.0, 220.0, 1.0), "duration_ms": (30_000.0, 600_000.0, 1000.0)}
TABLE_FEATURES = selectors.SORTABLE_FEATURES
EXPORT_FORMATS = (("m3u", "M3U"), ("csv", "CSV"), ("json", "JSON"))
RUNS_SHOWN = 50


def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster.objects.select_related("run"), pk=pk)
    run = cluster.run
    siblings = active_clusters(run)
    stats = selectors.catalog_feature_stats(siblings)
    profile = cluster.profile or {}
    z, centroid = profile.get("z", {}), profile.get("centroid", {})
    top = {t["feature"] for t in profile.get("top_features", [])}
    rows = [
        {"feature": f, "cluster_display": feature_display(f.name, centroid.get(f.name)),
         "catalog_display": feature_display(f.name, stats[f.name]["mean"]), "z": z.get(f.name), "top": f.name in top}
        for f in FEATURES
    ]
    query = request.GET.get("q", "").strip()[:200]
    sort = request.GET.get("sort", "id")
    sort = sort if sort in selectors.SORTS else "id"
    desc = request.GET.get("dir") == "desc"
    page = selectors.cluster_songs_page(
        cluster_id=cluster.pk, search=query, sort=sort, desc=desc,
        after=request.GET.get("after"), before=request.GET.get("before"),
    )
    for song in page.items:
        song.table_values = [feature_display(f, getattr(song, f)) for f in TABLE_FEATURES]
    columns = [{"label": "Title", "key": "name"}, {"label": "Artist", "key": None}] + [
        {"label": f, "key": f} for f in TABLE_FEATURES
    ]
    for col in columns:
        if col["key"]:
            col["sorted"] = ("descending" if desc else "ascending") if col["key"] == sort else None
            flip = "asc" if col["sorted"] == "descending" else ("desc" if col["sorted"] else "asc")
            col["href"] = "?" + urlencode({**({"q": query} if query else {}), "sort": col["key"], "dir": flip})
    representatives = selectors.songs_by_ids(profile.get("representative_song_ids", [])[:10])
    return render(request, "clustering/cluster.html", {
        "nav": "dashboard",
        "cluster": cluster,
        "run": run,
        "colour": cluster_colour(cluster.label),
        "percent": 100 * cluster.size / (sum(c.size for c in siblings) or 1),
        "rows": rows,
        "representatives": representatives,
        "page": page,
        "columns": columns,
        "base_query": urlencode({**({"q": query} if query else {}), "sort": sort, "dir": "desc" if desc else "asc"}),
        "q": query,
        "sort": sort,
        "desc": desc,
        "sorts": selectors.SORTS,
        "table_features": TABLE_FEATURES,
        "exports": EXPORT_FORMATS,
        "page_data": {"z": z, "centroid": centroid, "stats": stats, "features": features_json(),
                      "colour": cluster_colour(cluster.label), "name": cluster.name},
    })


@ensure_csrf_cookie
def predict(request: HttpRequest) -> HttpResponse:
    run = active_run()
    clusters = active_clusters(run)
    stats = selectors.catalog_feature_stats(clusters)
    sliders = []
    for f in FEATURES:
        low, high, step = SLIDER_RANGES.get(f.name, (f.low, f.high, 0.01))
        mean = stats[f.name]["mean"]
        value = (low + high) / 2 if mean is None else min(max(mean, low), high)
        value = round(round(value / step) * step, 4)
        if f.name == "duration_ms":
            value = int(value)
        sliders.append({
            "feature": f, "low": low, "high": high, "step": step, "value": value,
            # duration must be positive; the other features accept their bounds.
            "min": f.low if f.low_inclusive else 1, "max": f.high,
        })
    return render(request, "clustering/predict.html", {
        "nav": "predict",
        "run": run,
        "summary": run_summary(run),
        "sliders": sliders,
        "page_data": {"clusters": clusters_json(clusters), "features": features_json()},
    })


@ensure_csrf_cookie
def runs(request: HttpRequest) -> HttpResponse:
    rows = list(TrainingRun.objects.select_related("created_by").order_by("-created_at")[:RUNS_SHOWN])
    for run in rows:
        run.duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        run.silhouette = (run.metrics or {}).get("silhouette")
        run.live = run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
    return render(request, "clustering/runs.html", {
        "nav": "runs",
        "runs": rows,
        "can_retrain": request.user.is_authenticated and request.user.is_staff,
        "active": next((r for r in rows if r.is_active), None),
    })


# --- playlists -------------------------------------------------------------------------

PLAYLIST_FORMATS = (("m3u", "M3U"), ("csv", "CSV"), ("json", "JSON"), ("xspf", "XSPF"))
PLAYLISTS_PER_PAGE = 50
MINE_SHOWN = 100
RADIO_SONGS = 25
DESCRIPTION_MAX = 5000  # as the API accepts


def _export_links(base: str, extra: str = "") -> list[dict]:
    return [{"fmt": fmt, "label": label, "url": f"{base}?{extra}fmt={fmt}"} for fmt, label in PLAYLIST_FORMATS]


def _with_counts(qs):
    return qs.select_related("owner").annotate(song_count=Count("items")).order_by("-updated_at", "-id")


@require_http_methods(["GET", "HEAD", "POST"])
def playlist_list(request: HttpRequest) -> HttpResponse:
    """Public playlists for everyone; your own (private ones too) when signed in; POST creates an empty one."""
    error, status = None, 200
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            playlist = playlists.playlist_create(
                owner=request.user, name=request.POST.get("name", ""),
                description=request.POST.get("description", "")[:DESCRIPTION_MAX],
                is_public=request.POST.get("is_public") == "on",
            )
        except playlists.PlaylistError as exc:
            error, status = str(exc), 400
        else:
            messages.success(request, f"Created “{playlist.name}”: add songs below.")
            return redirect("clustering:playlist", pk=playlist.pk)
    mine = []
    if request.user.is_authenticated:
        mine = list(_with_counts(Playlist.objects.filter(owner=request.user))[:MINE_SHOWN + 1])
    public = Paginator(_with_counts(Playlist.objects.filter(is_public=True)), PLAYLISTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "clustering/playlists.html", {
        "nav": "playlists",
        "mine": mine[:MINE_SHOWN],
        "mine_more": len(mine) > MINE_SHOWN,
        "public": public,
        "error": error,
        "new_name": request.POST.get("name", "") if error else "",
    }, status=status)


def _total_length(ms: int) -> str:
    minutes = round(ms / 60_000)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _playlist_page(request: HttpRequest, playlist: Playlist, *, shared: bool, error: str | None = None,
                   status: int = 200, posted: dict | None = None) -> HttpResponse:
    songs = playlists.playlist_songs(playlist=playlist)
    run = active_run()
    # Only clusters of the active run get a badge (a song may still carry an older label).
    colours = {c.pk: cluster_colour(c.label) for c in active_clusters(run)}
    for song in songs:
        song.length = feature_display("duration_ms", song.duration_ms)
        song.colour = colours.get(song.cluster_id)
    is_owner = request.user.is_authenticated and playlist.owner_id == request.user.pk
    if shared:
        exports = _export_links(f"/api/playlists/shared/{playlist.share_id}/export/")
    else:
        exports = _export_links(f"/api/playlists/{playlist.pk}/export/")
    return render(request, "clustering/playlist.html", {
        "nav": "playlists",
        "playlist": playlist,
        "songs": songs,
        "duration": _total_length(sum(s.duration_ms or 0 for s in songs)) if songs else None,
        "is_owner": is_owner,
        "can_edit": is_owner and not shared,
        "shared": shared,
        "share_url": request.build_absolute_uri(f"/playlists/shared/{playlist.share_id}/"),
        "exports": exports,
        "error": error,
        "form": posted or {"name": playlist.name, "description": playlist.description, "is_public": playlist.is_public},
        "songs_json": json.dumps([s.external_id for s in songs]),
        "page_data": {"id": playlist.pk, "can_edit": is_owner and not shared},
    }, status=status)


def _posted_song_ids(raw: str | None) -> list[str] | None:
    """The song ids of the edit form (a JSON list kept by static/js/playlist.js); None keeps the songs."""
    if raw is None or not raw.strip():
        return None
    try:
        ids = json.loads(raw)
    except ValueError:
        raise playlists.PlaylistError("The song list of the form is not valid: reload the page and try again.") from None
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
        if len(posted["description"]) > DESCRIPTION_MAX:
            raise playlists.PlaylistError(f"A description has at most {DESCRIPTION_MAX:,} characters.")
        playlists.playlist_update(
            playlist=playlist, name=posted["name"], description=posted["description"],
            is_public=posted["is_public"], song_ids=_posted_song_ids(request.POST.get("songs")),
        )
    except playlists.PlaylistError as exc:
        playlist.refresh_from_db()
        return _playlist_page(request, playlist, shared=False, error=str(exc), status=400, posted=posted)
    messages.success(request, "Changes saved.")
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
    return render(request, "clustering/playlist_delete.html", {
        "nav": "playlists", "playlist": playlist, "count": playlist.items.count(),
    })


def playlist_shared(request: HttpRequest, share_id) -> HttpResponse:
    """A playlist by its share link: anyone holding the link reads it, public or not."""
    playlist = get_object_or_404(Playlist.objects.select_related("owner"), share_id=share_id)
    return _playlist_page(request, playlist, shared=True)


@ensure_csrf_cookie
def song_radio(request: HttpRequest, external_id: str) -> HttpResponse:
    """The radio of a song (GET /api/songs/<id>/radio/), with exports and "Save as playlist"."""
    song = selectors.song_get(external_id=external_id)
    if song is None:
        raise Http404("No song with this id.")
    run = active_run()
    state = model_state(run)
    api = f"/api/songs/{quote(song.external_id, safe='')}/radio/"
    return render(request, "clustering/radio.html", {
        "nav": "playlists",
        "song": song,
        "run": run,
        "state": state,
        "has_songs": True,
        "exports": _export_links(api, f"limit={RADIO_SONGS}&"),
        "page_data": {
            "url": f"{api}?limit={RADIO_SONGS}",
            "song": {"id": song.external_id, "name": song.name, "artist": song.artist.name},
            "clusters": clusters_json(active_clusters(run)),
        },
    })
