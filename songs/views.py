"""Server-rendered pages of the catalog: dashboard, search, song page, map data.

Charts are drawn in the browser by Plotly (served by this site); the data a
page's script needs is embedded with ``json_script`` (escaped for HTML) or
served by the small JSON endpoints below (``/map.json``, ``/search.json``).
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_GET

from clustering.models import Cluster, TrainingRun
from clustering.services import active_run

from . import selectors
from .features import FEATURES

# One colour per cluster label, shared by the cards, maps and charts. No red
# (the predict page marks its point in red) and no grey (noise).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#393b79", "#e7ba52", "#637939", "#7b4173",
)
NOISE_COLOUR = "#b0b0b0"
ALGORITHM_NAMES = {
    "kmeans": "K-Means", "minibatch": "Mini-batch K-Means", "dbscan": "DBSCAN", "hdbscan": "HDBSCAN",
    "gmm": "Gaussian mixture",
}


def feature_display(name: str, value: float | None) -> str:
    """A feature value as a person reads it: 0.62, -6.4 dB, 121 BPM, 3:35."""
    if value is None:
        return "—"
    if name == "duration_ms":
        seconds = round(value / 1000)
        return f"{seconds // 60}:{seconds % 60:02d}"
    if name == "loudness":
        return f"{value:.1f} dB"
    if name == "tempo":
        return f"{value:.0f} BPM"
    return f"{value:.2f}"


def cluster_colour(label: int) -> str:
    return NOISE_COLOUR if label < 0 else PALETTE[label % len(PALETTE)]


def clusters_json(clusters) -> list[dict]:
    """What a page's script needs of the clusters: id, label, name, colour, size, z-scores."""
    return [
        {
            "id": c.pk, "label": c.label, "name": c.name, "size": c.size, "colour": cluster_colour(c.label),
            "share": (c.profile or {}).get("share"), "z": (c.profile or {}).get("z", {}),
        }
        for c in clusters
    ]


def features_json() -> list[dict]:
    return [{"name": f.name, "unit": f.unit, "low": f.low, "high": f.high, "help": f.help} for f in FEATURES]


def run_summary(run: TrainingRun | None) -> dict | None:
    """The active model in words: algorithm, k, songs, silhouette, when."""
    if run is None:
        return None
    metrics = run.metrics or {}
    return {
        "id": run.pk,
        "algorithm": ALGORITHM_NAMES.get(run.algorithm, run.algorithm),
        "k": run.n_clusters,
        "songs": run.n_songs,
        "silhouette": metrics.get("silhouette"),
        "trained": run.finished_at or run.created_at,
    }


def active_clusters(run: TrainingRun | None) -> list[Cluster]:
    return list(run.clusters.order_by("label")) if run else []


def dashboard(request: HttpRequest) -> HttpResponse:
    run = active_run()
    clusters = active_clusters(run)
    total = sum(c.size for c in clusters) or 1
    cards = [
        {"cluster": c, "colour": cluster_colour(c.label), "percent": 100 * c.size / total,
         "top": (c.profile or {}).get("top_features", [])}
        for c in clusters
    ]
    return render(request, "songs/dashboard.html", {
        "nav": "dashboard",
        "has_songs": selectors.catalog_has_songs(),
        "run": run,
        "summary": run_summary(run),
        "cards": cards,
        "page_data": {
            "clusters": clusters_json(clusters),
            "features": features_json(),
            "k_scan": run.k_scan if run else [],
            "k_chosen": run.n_clusters if run else None,
            "algorithm": run.algorithm if run else None,
        },
    })


def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    page = selectors.song_search_page(search=query, after=request.GET.get("after"), before=request.GET.get("before"))
    return render(request, "songs/search.html", {
        "nav": "search",
        "q": query,
        "page": page,
        "base_query": urlencode({"q": query}) if query else "",
        "has_songs": bool(page.items) or selectors.catalog_has_songs(),
    })


def song_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    song = selectors.song_get(external_id=external_id)
    if song is None:
        raise Http404("No song with this id.")
    run = active_run()
    clusters = active_clusters(run)
    stats = selectors.catalog_feature_stats(clusters)
    cluster = song.cluster if song.cluster_id and run and song.cluster.run_id == run.pk else None
    centroid = (cluster.profile or {}).get("centroid", {}) if cluster else {}
    rows = [
        {"feature": f, "value": feature_display(f.name, getattr(song, f.name)),
         "cluster": feature_display(f.name, centroid.get(f.name)) if cluster else None,
         "catalog": feature_display(f.name, stats[f.name]["mean"])}
        for f in FEATURES
    ]
    return render(request, "songs/song.html", {
        "nav": "search",
        "song": song,
        "cluster": cluster,
        "cluster_colour": cluster_colour(cluster.label) if cluster else None,
        "run": run,
        "rows": rows,
        # Without an index on the active run the endpoint answers 503: say so instead of fetching.
        "similar_url": similar_url(song.external_id) if run and run.index_path else None,
        "page_data": {
            "song": {
                "id": song.external_id, "name": song.name, "artist": song.artist.name,
                "features": {f.name: getattr(song, f.name) for f in FEATURES},
                "map": None if song.map_x is None else {"x": song.map_x, "y": song.map_y},
            },
            "cluster": {"id": cluster.pk, "name": cluster.name, "centroid": centroid,
                        "z": (cluster.profile or {}).get("z", {})} if cluster else None,
            "stats": stats,
            "features": features_json(),
            "clusters": clusters_json(clusters),
        },
    })


@require_GET
def map_json(request: HttpRequest) -> JsonResponse:
    """The map sample of the active run (bounded, cached per run)."""
    run = active_run()
    if run is None:
        return JsonResponse({"detail": "No model is active yet."}, status=404)
    data = selectors.map_sample(run=run)
    response = JsonResponse({**data, "clusters": clusters_json(active_clusters(run))})
    response["Cache-Control"] = "max-age=60"
    return response


@require_GET
def search_json(request: HttpRequest) -> JsonResponse:
    """Up to ten songs matching ``q`` (title or artist), for the pickers of the pages."""
    query = request.GET.get("q", "").strip()[:200]
    return JsonResponse({"results": selectors.song_suggestions(search=query) if len(query) >= 2 else []})


def similar_url(external_id: str) -> str | None:
    """The similar-songs endpoint of a song, or None while the API has none
    (the page then says so instead of fetching a 404)."""
    url = f"/api/songs/{quote(external_id, safe='')}/similar/"
    try:
        resolve(url)
    except Resolver404:
        return None
    return url + "?limit=10"


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page without a <link rel=icon> (the admin's)."""
    return redirect(static("favicon.svg"), permanent=True)


def placeholder(request: HttpRequest, *, nav: str, title: str, text: str) -> HttpResponse:
    return render(request, "placeholder.html", {"nav": nav, "title": title, "text": text})
