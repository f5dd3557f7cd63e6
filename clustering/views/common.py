"""What the engine's pages share: colours, feature values as people read
them, and the data a page's script needs about clusters and features."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from csp.constants import UNSAFE_EVAL, UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings

from songs.features import FEATURES

from ..ml.algorithms import ALGORITHM_LABELS

if TYPE_CHECKING:  # annotations only: views reach models through selectors
    from ..models import TrainingRun

# Pages with Plotly charts: Plotly writes the bold and coloured parts of its
# labels as style attributes (setAttribute), which only 'unsafe-inline' in
# style-src-attr allows; <style> elements and scripts stay strict.
plotly_page = csp_update({"style-src-attr": [UNSAFE_INLINE]}, REPORT_ONLY=settings.CSP_REPORT_ONLY)
# Pages with the catalog map (scattergl) also need 'unsafe-eval': Plotly's
# WebGL layer (regl) compiles its shaders with `new Function`. Inline scripts
# stay refused.
webgl_map = csp_update(
    {"style-src-attr": [UNSAFE_INLINE], "script-src": [UNSAFE_EVAL]}, REPORT_ONLY=settings.CSP_REPORT_ONLY
)

# One colour per cluster label, shared by the cards, maps and charts. No red
# (the predict page marks its point in red) and no grey (noise).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#e7ba52",
    "#637939",
    "#7b4173",
)
NOISE_COLOUR = "#b0b0b0"


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
            "id": c.pk,
            "label": c.label,
            "name": c.name,
            "size": c.size,
            "colour": cluster_colour(c.label),
            "share": (c.profile or {}).get("share"),
            "z": (c.profile or {}).get("z", {}),
        }
        for c in clusters
    ]


def features_json() -> list[dict]:
    return [
        {"name": f.name, "label": f.display, "unit": f.unit, "low": f.low, "high": f.high, "help": f.help}
        for f in FEATURES
    ]


def run_summary(run: TrainingRun | None) -> dict | None:
    """The active model in words: algorithm, k, songs, silhouette, when."""
    if run is None:
        return None
    metrics = run.metrics or {}
    return {
        "id": run.pk,
        "algorithm": ALGORITHM_LABELS.get(run.algorithm, run.algorithm),
        "k": run.n_clusters,
        "songs": run.n_songs,
        "silhouette": metrics.get("silhouette"),
        "trained": run.finished_at or run.created_at,
    }


def model_state(run: TrainingRun | None) -> str:
    """ "none" (no active model), "noindex" (a model without a similarity index) or "ready"."""
    if run is None:
        return "none"
    return "ready" if run.index_path else "noindex"


def card_scale(clusters) -> float:
    """One σ range for every card's profile chart (so bars compare across
    cards): the largest |z| of any cluster, at least 2.5, rounded up to 0.5."""
    reach = max(
        (abs(v) for c in clusters for v in ((c.profile or {}).get("z") or {}).values()),
        default=0.0,
    )
    return max(2.5, math.ceil(reach * 1.05 * 2) / 2)
