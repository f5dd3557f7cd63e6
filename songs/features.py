"""The audio features a song carries, with the ranges an import accepts.

Plain Python (no Django): the importer, the ML core's callers and the
generator share these definitions.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    name: str
    low: float
    high: float
    unit: str = ""
    # duration must be strictly positive; the others accept their bounds.
    low_inclusive: bool = True
    help: str = ""


# The ten clustering features, in the order every matrix uses.
FEATURES: tuple[Feature, ...] = (
    Feature("danceability", 0.0, 1.0, help="How suitable for dancing (0-1)."),
    Feature("energy", 0.0, 1.0, help="Perceived intensity and activity (0-1)."),
    Feature("loudness", -60.0, 5.0, "dB", help="Overall loudness in decibels."),
    Feature("speechiness", 0.0, 1.0, help="Presence of spoken words (0-1)."),
    Feature("acousticness", 0.0, 1.0, help="Confidence the track is acoustic (0-1)."),
    Feature("instrumentalness", 0.0, 1.0, help="Likelihood of no vocals (0-1)."),
    Feature("liveness", 0.0, 1.0, help="Presence of an audience (0-1)."),
    Feature("valence", 0.0, 1.0, help="Musical positiveness (0-1)."),
    Feature("tempo", 0.0, 300.0, "BPM", help="Estimated tempo in beats per minute."),
    Feature("duration_ms", 0.0, 86_400_000.0, "ms", low_inclusive=False, help="Duration in milliseconds."),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
