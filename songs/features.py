"""The attributes a song carries: one table of names, ranges, units, steps
and help text, from which the importer's checks, the API's bounds, the
pages' sliders and their help all derive.

Plain Python (no Django). Meanings and ranges follow Spotify's documented
audio features; an import rejects a row whose clustering feature is out of
range and stores an optional attribute that is out of range as empty.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    name: str
    low: float
    high: float
    unit: str = ""
    help: str = ""
    # The granularity of an input for it (sliders, number fields).
    step: float = 0.01
    # duration must be strictly positive; the others accept their bounds.
    low_inclusive: bool = True
    # The slider range of the predict page where it is narrower than the
    # accepted range (what real music covers).
    slider: tuple[float, float] | None = None
    # What a listener calls it ("length", not duration_ms); the name when empty.
    label: str = ""

    @property
    def display(self) -> str:
        return self.label or self.name


# Kept as a name: the ten clustering features are Attributes too.
Feature = Attribute

# The ten clustering features, in the order every matrix uses.
FEATURES: tuple[Attribute, ...] = (
    Attribute("danceability", 0.0, 1.0, label="danceability", help="How suitable for dancing (0-1)."),
    Attribute("energy", 0.0, 1.0, label="energy", help="Perceived intensity and activity (0-1)."),
    Attribute(
        "loudness",
        -60.0,
        5.0,
        "dB",
        label="loudness",
        help="Overall loudness in decibels.",
        step=0.1,
        slider=(-40.0, 2.0),
    ),
    Attribute("speechiness", 0.0, 1.0, label="speech", help="Presence of spoken words (0-1)."),
    Attribute("acousticness", 0.0, 1.0, label="acoustic sound", help="Confidence the track is acoustic (0-1)."),
    Attribute("instrumentalness", 0.0, 1.0, label="instrumental sound", help="Likelihood of no vocals (0-1)."),
    Attribute("liveness", 0.0, 1.0, label="live feel", help="Presence of an audience (0-1)."),
    Attribute("valence", 0.0, 1.0, label="mood", help="Musical positiveness (0-1)."),
    Attribute(
        "tempo",
        0.0,
        300.0,
        "BPM",
        label="tempo",
        help="Estimated tempo in beats per minute.",
        step=1,
        slider=(40.0, 220.0),
    ),
    Attribute(
        "duration_ms",
        0.0,
        86_400_000.0,
        "ms",
        label="length",
        help="Duration in milliseconds.",
        step=1000,
        low_inclusive=False,
        slider=(30_000.0, 600_000.0),
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME: dict[str, Attribute] = {f.name: f for f in FEATURES}

# Optional attributes beside the features (stored empty when missing or out of range).
EXTRA_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("key", 0, 11, help="Pitch class: 0 = C, 1 = C♯/D♭, … 11 = B.", step=1),
    Attribute("mode", 0, 1, help="1 = major, 0 = minor.", step=1),
    Attribute("popularity", 0, 100, help="How popular the song is (0-100).", step=1),
    Attribute("time_signature", 0, 12, label="time signature", help="Beats per bar.", step=1),
)
_BY_NAME: dict[str, Attribute] = {a.name: a for a in (*FEATURES, *EXTRA_ATTRIBUTES)}

# The attributes similar songs and recommendations filter on and aim at, in
# the order the API lists their parameters (Spotify's, duration and the
# integer attributes last).
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "acousticness",
    "danceability",
    "energy",
    "instrumentalness",
    "liveness",
    "loudness",
    "speechiness",
    "tempo",
    "valence",
    "duration_ms",
    "key",
    "mode",
    "popularity",
    "time_signature",
)
ATTRIBUTES: dict[str, Attribute] = {name: _BY_NAME[name] for name in ATTRIBUTE_NAMES}

# What pages and explanations call each attribute ("length" for duration_ms).
ATTRIBUTE_LABELS: dict[str, str] = {name: a.display for name, a in _BY_NAME.items()}
