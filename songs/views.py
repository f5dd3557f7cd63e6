"""Server-rendered pages of the catalog: dashboard, search, song page, map data.

Charts are drawn in the browser by Plotly (served by this site); the data a
page's script needs is embedded with ``json_script`` (escaped for HTML) or
served by the small JSON endpoints below (``/map.json``, ``/search.json``).
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from clustering.models import Cluster, TrainingRun
from clustering.services import active_run
from clustering.similarity import ATTRIBUTE_RANGES, MAX_SEEDS, PATH_LENGTH

from . import selectors
from .features import FEATURES, FEATURES_BY_NAME
from .models import Artist, Song

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


def similar_url(external_id: str) -> str:
    """The song page's similar songs: at most two per artist, or one prolific
    artist near a song fills the whole list (the artist's mean sound is part
    of every song's vector)."""
    return f"/api/songs/{quote(external_id, safe='')}/similar/?limit=10&max_per_artist=2"


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page without a <link rel=icon> (the admin's)."""
    return redirect(static("favicon.svg"), permanent=True)


@require_GET
def artists_json(request: HttpRequest) -> JsonResponse:
    """Up to ten artists whose name contains ``q``, names starting with it
    first, with their song counts (the recommendation page's artist picker)."""
    query = request.GET.get("q", "").strip()[:200]
    if len(query) < 2:
        return JsonResponse({"results": []})
    # Two short reads that stop at ten rows each (no sort of every match).
    rows = list(Artist.objects.filter(name__istartswith=query).order_by("id").values_list("id", "external_id", "name")[:10])
    if len(rows) < 10:
        seen = [r[0] for r in rows]
        rows += list(
            Artist.objects.filter(name__icontains=query).exclude(id__in=seen).order_by("id")
            .values_list("id", "external_id", "name")[: 10 - len(rows)]
        )
    counts = dict(
        Song.objects.filter(artist_id__in=[r[0] for r in rows]).values("artist_id").annotate(n=Count("id"))
        .values_list("artist_id", "n")
    )
    return JsonResponse({"results": [{"id": ext, "name": name, "songs": counts.get(pk, 0)} for pk, ext, name in rows]})


# --- recommendations and paths (pages over /api/recommendations/ and /api/path/) ----

# The attributes /api/recommendations/ filters and aims at: these first, the rest under "More".
RECOMMEND_MAIN = ("energy", "danceability", "valence", "acousticness", "tempo", "popularity")
RECOMMEND_MORE = ("instrumentalness", "speechiness", "liveness", "loudness", "duration_ms", "key", "mode",
                  "time_signature")
ATTRIBUTE_HELP = {
    "popularity": "How popular the song is (0-100).",
    "key": "Pitch class: 0 = C, 1 = C♯/D♭, … 11 = B.",
    "mode": "1 = major, 0 = minor.",
    "time_signature": "Beats per bar.",
}
ATTRIBUTE_STEP = {"tempo": 1, "popularity": 1, "loudness": 0.5, "duration_ms": 1000, "key": 1, "mode": 1,
                  "time_signature": 1}
SEED_KINDS = ("seed_songs", "seed_artists", "seed_genres")


def _id_param(request: HttpRequest, name: str) -> list[str]:
    """A comma-separated id list from the query string, trimmed and capped."""
    return [item.strip()[:512] for item in request.GET.get(name, "").split(",") if item.strip()][:MAX_SEEDS]


def _song_labels(ids: list[str]) -> dict[str, dict]:
    found = Song.objects.filter(external_id__in=ids).select_related("artist")
    return {s.external_id: {"id": s.external_id, "name": s.name, "artist": s.artist.name} for s in found}


def model_state(run: TrainingRun | None) -> str:
    """"none" (no active model), "noindex" (a model without a similarity index) or "ready"."""
    if run is None:
        return "none"
    return "ready" if run.index_path else "noindex"


def _attribute_rows(request: HttpRequest, names, stats: dict) -> list[dict]:
    rows = []
    for name in names:
        low, high = ATTRIBUTE_RANGES[name]
        feature = FEATURES_BY_NAME.get(name)
        mean = stats.get(name, {}).get("mean") if feature else None
        rows.append({
            "name": name, "low": low, "high": high, "step": ATTRIBUTE_STEP.get(name, 0.01),
            "unit": feature.unit if feature else "",
            "help": feature.help if feature else ATTRIBUTE_HELP.get(name, ""),
            "average": feature_display(name, mean) if mean is not None else None,
            # Values from the query string come back into the form as typed; the API judges them.
            "values": {kind: request.GET.get(f"{kind}_{name}", "").strip()[:32] for kind in ("min", "target", "max")},
        })
    return rows


@ensure_csrf_cookie
def recommend(request: HttpRequest) -> HttpResponse:
    """Recommendations from seed songs, artists and genres, with bounds and targets.

    The form mirrors the API's query string, so a result page is a link: the
    seeds in the address are shown by name and the query runs on load.
    """
    run = active_run()
    clusters = active_clusters(run)
    stats = selectors.catalog_feature_stats(clusters) if run else {}
    seeds = {kind: _id_param(request, kind) for kind in SEED_KINDS}
    songs = _song_labels(seeds["seed_songs"]) if seeds["seed_songs"] else {}
    # The API takes artist ids or exact names; a name is its own label.
    artists = dict(Artist.objects.filter(external_id__in=seeds["seed_artists"]).values_list("external_id", "name")) \
        if seeds["seed_artists"] else {}
    initial = (
        [{"type": "song", "id": i, "label": (f"{songs[i]['name']} — {songs[i]['artist']}" if i in songs else i)}
         for i in seeds["seed_songs"]]
        + [{"type": "artist", "id": i, "label": artists.get(i, i)} for i in seeds["seed_artists"]]
        + [{"type": "genre", "id": i, "label": i} for i in seeds["seed_genres"]]
    )[:MAX_SEEDS]
    limit = request.GET.get("limit", "").strip()[:4] or "20"
    return render(request, "songs/recommend.html", {
        "nav": "recommend",
        "run": run,
        "state": model_state(run),
        "has_songs": run is not None or selectors.catalog_has_songs(),
        "main_rows": _attribute_rows(request, RECOMMEND_MAIN, stats),
        "more_rows": _attribute_rows(request, RECOMMEND_MORE, stats),
        "more_open": any(request.GET.get(f"{k}_{n}") for n in RECOMMEND_MORE for k in ("min", "target", "max")),
        "limit": limit,
        "max_seeds": MAX_SEEDS,
        "page_data": {
            "seeds": initial,
            "max_seeds": MAX_SEEDS,
            "run_now": bool(initial),
            "signed_in": request.user.is_authenticated,
            "clusters": clusters_json(clusters),
        },
    })


@ensure_csrf_cookie
def path_page(request: HttpRequest) -> HttpResponse:
    """A path of songs from one song to another (GET /api/path/), as a list and a chart."""
    run = active_run()
    clusters = active_clusters(run)
    ends = {name: request.GET.get(name, "").strip()[:512] for name in ("from", "to")}
    labels = _song_labels([v for v in ends.values() if v])
    try:
        length = int(request.GET.get("length", 10))
    except ValueError:
        length = 10
    length = min(max(length, PATH_LENGTH[0]), PATH_LENGTH[1])
    return render(request, "songs/path.html", {
        "nav": "path",
        "run": run,
        "state": model_state(run),
        "has_songs": run is not None or selectors.catalog_has_songs(),
        "length": length,
        "length_range": PATH_LENGTH,
        "page_data": {
            "from": labels.get(ends["from"]) if ends["from"] else None,
            "to": labels.get(ends["to"]) if ends["to"] else None,
            "run_now": bool(ends["from"] in labels and ends["to"] in labels),
            "unknown": [name for name, value in ends.items() if value and value not in labels],
            "signed_in": request.user.is_authenticated,
            "clusters": clusters_json(clusters),
            "features": features_json(),
        },
    })
