"""Server-rendered pages of the clustering: a cluster, live prediction, training runs."""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie

from songs import selectors
from songs.features import FEATURES
from songs.views import (
    active_clusters,
    cluster_colour,
    clusters_json,
    feature_display,
    features_json,
    run_summary,
)

from .models import Cluster, TrainingRun
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
