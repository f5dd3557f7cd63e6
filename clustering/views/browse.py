"""Pages that browse the active model: the dashboard (cards and map), a
cluster, a song with its neighbours, and the training runs."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from songs import selectors as catalog
from songs.features import FEATURES

from .. import selectors, services
from .common import (
    card_scale,
    cluster_colour,
    clusters_json,
    feature_display,
    features_json,
    plotly_page,
    run_summary,
    webgl_map,
)
from .playlists import export_links

TABLE_FEATURES = catalog.SORTABLE_FEATURES


@webgl_map
def dashboard(request: HttpRequest) -> HttpResponse:
    run = selectors.active_run()
    clusters = selectors.run_clusters(run)
    total = sum(c.size for c in clusters) or 1
    examples = selectors.cluster_examples(clusters)
    cards = [
        {
            "cluster": c,
            "colour": cluster_colour(c.label),
            "percent": 100 * c.size / total,
            "top": (c.profile or {}).get("top_features", []),
            "genres": [
                {"genre": g["genre"], "percent": 100 * g["share"]}
                for g in ((c.profile or {}).get("top_genres") or [])[:3]
            ],
            "examples": examples.get(c.pk, []),
        }
        for c in clusters
    ]
    return render(
        request,
        "clustering/dashboard.html",
        {
            "nav": "dashboard",
            "has_songs": catalog.catalog_has_songs(),
            "run": run,
            "summary": run_summary(run),
            "cards": cards,
            "page_data": {
                "clusters": clusters_json(clusters),
                "features": features_json(),
                "k_scan": run.k_scan if run else [],
                "k_chosen": run.n_clusters if run else None,
                "algorithm": run.algorithm if run else None,
                # Every card's chart spans the same σ range, so bars compare across cards.
                "card_scale": card_scale(clusters),
            },
            "k_choice": selectors.run_k_choice(run),
        },
    )


@webgl_map
def song_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    song = catalog.song_get(external_id=external_id)
    if song is None:
        raise Http404("No song with this id.")
    run = selectors.active_run()
    clusters = selectors.run_clusters(run)
    stats = selectors.catalog_feature_stats(clusters)
    # The song's label is the active run's (songs.labels): its cluster is one of the run's.
    cluster = next((c for c in clusters if c.pk == song.cluster_id), None) if song.cluster_id else None
    centroid = (cluster.profile or {}).get("centroid", {}) if cluster else {}
    rows = [
        {
            "feature": f,
            "value": feature_display(f.name, getattr(song, f.name)),
            "cluster": feature_display(f.name, centroid.get(f.name)) if cluster else None,
            "catalog": feature_display(f.name, stats[f.name]["mean"]),
        }
        for f in FEATURES
    ]
    blocks = None
    if request.user.is_authenticated:
        genres = {g: services.genre_normalise(g) for g in song.genres or []}
        blocked_genres = selectors.blocked_values(user=request.user, kind="genre", values=set(genres.values()))
        blocks = {
            "song": bool(selectors.blocked_values(user=request.user, kind="song", values=[song.external_id])),
            "artist": bool(
                selectors.blocked_values(user=request.user, kind="artist", values=[song.artist.external_id])
            ),
            "genres": [{"name": g, "blocked": key in blocked_genres} for g, key in genres.items()],
        }
    return render(
        request,
        "clustering/song.html",
        {
            "nav": "search",
            "song": song,
            "blocks": blocks,
            "similar_artists_url": similar_artists_url(song.artist.external_id) if run and run.index_path else None,
            "cluster": cluster,
            "cluster_colour": cluster_colour(cluster.label) if cluster else None,
            "run": run,
            "rows": rows,
            # Without an index on the active run the endpoint answers 503: say so instead of fetching.
            "similar_url": similar_url(song.external_id) if run and run.index_path else None,
            "page_data": {
                "song": {
                    "id": song.external_id,
                    "name": song.name,
                    "artist": song.artist.name,
                    "features": {f.name: getattr(song, f.name) for f in FEATURES},
                    "map": None if song.map_x is None else {"x": song.map_x, "y": song.map_y},
                },
                "cluster": {
                    "id": cluster.pk,
                    "name": cluster.name,
                    "centroid": centroid,
                    "z": (cluster.profile or {}).get("z", {}),
                }
                if cluster
                else None,
                "stats": stats,
                "features": features_json(),
                "clusters": clusters_json(clusters),
            },
        },
    )


@require_GET
def map_json(request: HttpRequest) -> JsonResponse:
    """The map sample of the active run (bounded, cached per run)."""
    run = selectors.active_run()
    if run is None:
        return JsonResponse({"detail": "No model is active yet."}, status=404)
    data = selectors.map_sample(run=run)
    response = JsonResponse({**data, "clusters": clusters_json(selectors.run_clusters(run))})
    response["Cache-Control"] = "max-age=60"
    return response


def similar_url(external_id: str) -> str:
    """The song page's similar songs: at most two per artist, or one prolific
    artist near a song fills the whole list (the artist's mean sound is part
    of every song's vector)."""
    return f"/api/songs/{quote(external_id, safe='')}/similar/?limit=10&max_per_artist=2"


def similar_artists_url(external_id: str) -> str:
    """The song page's similar artists (GET /api/artists/<id>/similar/)."""
    return f"/api/artists/{quote(external_id, safe='')}/similar/?limit=8"


@plotly_page
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = selectors.cluster_get(pk=pk)
    if cluster is None:
        raise Http404("No cluster with this id.")
    run = cluster.run
    siblings = selectors.run_clusters(run)
    stats = selectors.catalog_feature_stats(siblings)
    profile = cluster.profile or {}
    z, centroid = profile.get("z", {}), profile.get("centroid", {})
    top = {t["feature"] for t in profile.get("top_features", [])}
    rows = [
        {
            "feature": f,
            "cluster_display": feature_display(f.name, centroid.get(f.name)),
            "catalog_display": feature_display(f.name, stats[f.name]["mean"]),
            "z": z.get(f.name),
            "top": f.name in top,
        }
        for f in FEATURES
    ]
    query = request.GET.get("q", "").strip()[:200]
    sort = request.GET.get("sort", "id")
    sort = sort if sort in catalog.SORTS else "id"
    desc = request.GET.get("dir") == "desc"
    # A signed-in listener's blocked artists, songs and genres stay out of the lists.
    excludes = selectors.blocklist_excludes(user=request.user)
    page = selectors.cluster_songs_page(
        cluster_id=cluster.pk,
        search=query,
        sort=sort,
        desc=desc,
        after=request.GET.get("after"),
        before=request.GET.get("before"),
        exclude_artists=excludes["exclude_artists"],
        exclude_songs=excludes["exclude_songs"],
        exclude_genres=excludes["exclude_genres"],
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
    representatives = [
        song
        for song in catalog.songs_by_ids(profile.get("representative_song_ids", [])[:20])
        if song.external_id not in excludes["exclude_songs"]
        and song.artist.external_id not in excludes["exclude_artists"]
        and not excludes["exclude_genres"].intersection(song.genres or ())
    ][:10]
    return render(
        request,
        "clustering/cluster.html",
        {
            "nav": "dashboard",
            "cluster": cluster,
            "run": run,
            "colour": cluster_colour(cluster.label),
            "percent": 100 * cluster.size / (sum(c.size for c in siblings) or 1),
            "rows": rows,
            "representatives": representatives,
            "genres": [
                {"genre": g["genre"], "percent": 100 * g["share"]} for g in (profile.get("top_genres") or [])[:5]
            ],
            "page": page,
            "columns": columns,
            "base_query": urlencode(
                {**({"q": query} if query else {}), "sort": sort, "dir": "desc" if desc else "asc"}
            ),
            "q": query,
            "sort": sort,
            "desc": desc,
            "sorts": catalog.SORTS,
            "table_features": TABLE_FEATURES,
            "exports": export_links(f"/api/clusters/{cluster.pk}/playlist/"),
            "page_data": {
                "z": z,
                "centroid": centroid,
                "stats": stats,
                "features": features_json(),
                "colour": cluster_colour(cluster.label),
                "name": cluster.name,
            },
        },
    )


@ensure_csrf_cookie
def runs(request: HttpRequest) -> HttpResponse:
    rows = selectors.runs_recent()
    for run in rows:
        run.duration = (
            (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        )
        run.silhouette = (run.metrics or {}).get("silhouette")
        run.live = run.is_live
        run.k_choice = selectors.run_k_choice(run)
    return render(
        request,
        "clustering/runs.html",
        {
            "nav": "runs",
            "runs": rows,
            "can_retrain": request.user.is_authenticated and request.user.is_staff,
            "active": next((r for r in rows if r.is_active), None),
        },
    )
