"""Pages that ask the model: live prediction, recommendations, paths between
two songs and a song's radio. Each mirrors its API endpoint's query string,
so a result page is a link."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from songs import selectors as catalog
from songs.features import ATTRIBUTES, FEATURES

from .. import selectors
from ..ml.variety import SEED_MAX
from ..similarity import MAX_SEEDS, PATH_LENGTH
from .common import clusters_json, feature_display, features_json, model_state, plotly_page, run_summary, webgl_map
from .playlists import export_links

RADIO_SONGS = 25
# The attributes /api/recommendations/ filters and aims at: these first, the rest under "More".
RECOMMEND_MAIN = ("energy", "danceability", "valence", "acousticness", "tempo", "popularity")
RECOMMEND_MORE = (
    "instrumentalness",
    "speechiness",
    "liveness",
    "loudness",
    "duration_ms",
    "key",
    "mode",
    "time_signature",
)
SEED_KINDS = ("seed_songs", "seed_artists", "seed_genres")


def _id_param(request: HttpRequest, name: str) -> list[str]:
    """A comma-separated id list from the query string, trimmed and capped."""
    return [item.strip()[:512] for item in request.GET.get(name, "").split(",") if item.strip()][:MAX_SEEDS]


KIND_LABELS = {"min": "Min", "target": "Target", "max": "Max"}
LIMIT_ERROR = "Enter a whole number of songs from 1 to 100."


def _bound_errors(attribute, values: dict[str, str]) -> tuple[str, list[str]]:
    """What is wrong with an attribute's min/target/max boxes as typed in the
    address, in the words static/js/recommend.js uses for the same checks:
    (message, the kinds to mark)."""
    messages, invalid, numbers = [], [], {}
    for kind, text in values.items():
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value != value or value in (float("inf"), float("-inf")):
            messages.append(f"{KIND_LABELS[kind]}: enter a number.")
            invalid.append(kind)
        elif not attribute.low <= value <= attribute.high:
            messages.append(f"{KIND_LABELS[kind]} must be from {attribute.low:g} to {attribute.high:g}.")
            invalid.append(kind)
        else:
            numbers[kind] = value
    if "min" in numbers and "max" in numbers and numbers["min"] > numbers["max"]:
        messages.append(f"The min ({values['min']}) is above the max ({values['max']}).")
        invalid += ["min", "max"]
    return " ".join(messages), invalid


def _attribute_rows(request: HttpRequest, names, stats: dict) -> list[dict]:
    rows = []
    for name in names:
        attribute = ATTRIBUTES[name]
        mean = stats.get(name, {}).get("mean")
        values = {kind: request.GET.get(f"{kind}_{name}", "").strip()[:32] for kind in ("min", "target", "max")}
        error, invalid = _bound_errors(attribute, values)
        rows.append(
            {
                "name": name,
                "low": attribute.low,
                "high": attribute.high,
                "step": attribute.step,
                "unit": attribute.unit,
                "help": attribute.help,
                "average": feature_display(name, mean) if mean is not None else None,
                # Values from the query string come back into the form as typed, with
                # what is wrong with them beside the field (the page asks nothing then).
                "values": values,
                "error": error,
                "invalid": invalid,
            }
        )
    return rows


@ensure_csrf_cookie
def recommend(request: HttpRequest) -> HttpResponse:
    """Recommendations from seed songs, artists and genres, with bounds and targets.

    The form mirrors the API's query string, so a result page is a link: the
    seeds in the address are shown by name and the query runs on load.
    """
    run = selectors.active_run()
    clusters = selectors.run_clusters(run)
    stats = selectors.catalog_feature_stats(clusters) if run else {}
    seeds = {kind: _id_param(request, kind) for kind in SEED_KINDS}
    songs = catalog.song_labels(external_ids=seeds["seed_songs"]) if seeds["seed_songs"] else {}
    # The API takes artist ids or exact names; a name is its own label.
    artists = catalog.artist_names(external_ids=seeds["seed_artists"]) if seeds["seed_artists"] else {}
    initial = (
        [
            {"type": "song", "id": i, "label": (f"{songs[i]['name']} — {songs[i]['artist']}" if i in songs else i)}
            for i in seeds["seed_songs"]
        ]
        + [{"type": "artist", "id": i, "label": artists.get(i, i)} for i in seeds["seed_artists"]]
        + [{"type": "genre", "id": i, "label": i} for i in seeds["seed_genres"]]
    )[:MAX_SEEDS]
    limit = request.GET.get("limit", "").strip()[:4] or "20"
    limit_error = "" if limit.isdigit() and 1 <= int(limit) <= 100 else LIMIT_ERROR
    main_rows = _attribute_rows(request, RECOMMEND_MAIN, stats)
    more_rows = _attribute_rows(request, RECOMMEND_MORE, stats)
    valid = not limit_error and not any(row["error"] for row in (*main_rows, *more_rows))
    return render(
        request,
        "clustering/recommend.html",
        {
            "nav": "recommend",
            "run": run,
            "state": model_state(run),
            "has_songs": run is not None or catalog.catalog_has_songs(),
            "main_rows": main_rows,
            "more_rows": more_rows,
            "more_open": any(request.GET.get(f"{k}_{n}") for n in RECOMMEND_MORE for k in ("min", "target", "max")),
            "limit": limit,
            "limit_error": limit_error,
            "max_seeds": MAX_SEEDS,
            "page_data": {
                "seeds": initial,
                "max_seeds": MAX_SEEDS,
                "run_now": bool(initial) and valid,
                "signed_in": request.user.is_authenticated,
                "clusters": clusters_json(clusters),
            },
        },
    )


def _path_errors(ends: dict[str, str], labels: dict, length: str) -> dict[str, str]:
    """What is wrong with the path's fields as given in the address, beside each field
    (the words static/js/path.js uses for the same checks)."""
    errors = {}
    for name, which in (("from", "start"), ("to", "end")):
        if ends[name] and ends[name] not in labels:
            errors[name] = f"No song has the {which} song's id in this address: choose the {which} song again."
    if ends["from"] and ends["from"] == ends["to"] and "to" not in errors:
        errors["to"] = "The end song is the start song: choose another end song."
    low, high = PATH_LENGTH
    if length and not (length.isdigit() and low <= int(length) <= high):
        errors["length"] = f"Enter a whole number of songs from {low} to {high}."
    return errors


@plotly_page
@ensure_csrf_cookie
def path_page(request: HttpRequest) -> HttpResponse:
    """A path of songs from one song to another (GET /api/path/), as a list and a chart."""
    run = selectors.active_run()
    clusters = selectors.run_clusters(run)
    ends = {name: request.GET.get(name, "").strip()[:512] for name in ("from", "to")}
    labels = catalog.song_labels(external_ids=[v for v in ends.values() if v])
    typed = request.GET.get("length", "").strip()[:4]
    errors = _path_errors(ends, labels, typed)
    # A whole number comes back as typed (marked when out of range), anything else as the default.
    length = int(typed) if typed.isdigit() else 10
    return render(
        request,
        "clustering/path.html",
        {
            "nav": "path",
            "run": run,
            "state": model_state(run),
            "has_songs": run is not None or catalog.catalog_has_songs(),
            "length": length,
            "length_range": PATH_LENGTH,
            "errors": errors,
            "page_data": {
                "from": labels.get(ends["from"]) if ends["from"] else None,
                "to": labels.get(ends["to"]) if ends["to"] else None,
                "run_now": bool(ends["from"] in labels and ends["to"] in labels) and not errors,
                "signed_in": request.user.is_authenticated,
                "clusters": clusters_json(clusters),
                "features": features_json(),
            },
        },
    )


@webgl_map
@ensure_csrf_cookie
def predict(request: HttpRequest) -> HttpResponse:
    run = selectors.active_run()
    clusters = selectors.run_clusters(run)
    stats = selectors.catalog_feature_stats(clusters)
    sliders = []
    for f in FEATURES:
        low, high = f.slider or (f.low, f.high)
        step = f.step
        mean = stats[f.name]["mean"]
        value = (low + high) / 2 if mean is None else min(max(mean, low), high)
        value = round(round(value / step) * step, 4)
        if f.name == "duration_ms":
            value = int(value)
        sliders.append(
            {
                "feature": f,
                "low": low,
                "high": high,
                "step": step,
                "value": value,
                # duration must be positive; the other features accept their bounds.
                "min": f.low if f.low_inclusive else 1,
                "max": f.high,
            }
        )
    return render(
        request,
        "clustering/predict.html",
        {
            "nav": "predict",
            "run": run,
            "summary": run_summary(run),
            "sliders": sliders,
            "page_data": {"clusters": clusters_json(clusters), "features": features_json()},
        },
    )


def _radio_variety(request: HttpRequest) -> tuple[float, int | None]:
    """The radio page's variety (0-1, 0 when missing or not a number) and
    seed: the one asked for, or a new one at a variety above 0, shown in the
    form so that the same radio can be had again."""
    try:
        variety = min(max(float(request.GET.get("variety", 0)), 0.0), 1.0)
    except ValueError:
        variety = 0.0
    if variety != variety:  # NaN
        variety = 0.0
    variety = round(variety, 2)
    if not variety:
        return 0.0, None
    raw = request.GET.get("seed", "").strip()
    if raw.isascii() and raw.isdigit() and int(raw) <= SEED_MAX:
        return variety, int(raw)
    return variety, secrets.randbelow(SEED_MAX + 1)


@ensure_csrf_cookie
def song_radio(request: HttpRequest, external_id: str) -> HttpResponse:
    """The radio of a song (GET /api/songs/<id>/radio/), with exports and "Save as playlist"."""
    song = catalog.song_get(external_id=external_id)
    if song is None:
        raise Http404("No song with this id.")
    run = selectors.active_run()
    state = model_state(run)
    api = f"/api/songs/{quote(song.external_id, safe='')}/radio/"
    variety, seed = _radio_variety(request)
    query = f"limit={RADIO_SONGS}" + (f"&variety={variety:g}&seed={seed}" if variety else "")
    return render(
        request,
        "clustering/radio.html",
        {
            "nav": "playlists",
            "song": song,
            "run": run,
            "state": state,
            "has_songs": True,
            "exports": export_links(api, f"{query}&"),
            "variety": variety,
            "seed": seed,
            "page_data": {
                "url": f"{api}?{query}",
                "song": {"id": song.external_id, "name": song.name, "artist": song.artist.name},
                "clusters": clusters_json(selectors.run_clusters(run)),
            },
        },
    )
