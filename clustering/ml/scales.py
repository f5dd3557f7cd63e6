"""What the audio features' values mean to a listener, in words.

Spotify documents what its scales mean (developer reference, "Get Track's
Audio Features"): speechiness above 0.66 is probably made entirely of
spoken words, 0.33-0.66 may contain both music and speech (rap), below
0.33 is most likely music; instrumentalness above 0.5 is intended to
represent instrumental tracks, and the closer to 1.0 the more likely there
are no vocals; liveness above 0.8 is a strong likelihood that the track is
live; acousticness 1.0 is high confidence the track is acoustic; energy is
perceived intensity (death metal high, a Bach prelude low); valence high
sounds positive (happy, cheerful), low negative (sad, angry); loudness is
in dB, typically -60 to 0 (masterings of current pop sit around -8 to -4
dB); tempo in BPM. The bands below turn a value into a word a listener
uses ("acoustic", "slow", "quiet"), and say where a value is too ordinary
for a word (the middle of a scale has none).

The same bands name clusters (on a cluster's *mean*) and explain why two
songs are alike, so a song called "quiet" on one page is quiet on every
page. Pure Python: no Django, no project imports.
"""

from __future__ import annotations

from typing import NamedTuple


class Band(NamedTuple):
    """A word for values within [low, high) of one feature."""

    low: float
    high: float
    word: str


# Feature -> bands (non-overlapping). Values between bands get no word.
LEVELS: dict[str, tuple[Band, ...]] = {
    "energy": (Band(0.0, 0.4, "calm"), Band(0.7, 1.01, "energetic")),
    "acousticness": (Band(0.0, 0.05, "electric"), Band(0.6, 1.01, "acoustic")),
    "loudness": (Band(-100.0, -12.0, "quiet"), Band(-6.0, 10.0, "loud")),
    "tempo": (Band(0.0, 90.0, "slow"), Band(130.0, 400.0, "fast")),
    "danceability": (Band(0.0, 0.4, "hard to dance to"), Band(0.7, 1.01, "danceable")),
    "valence": (Band(0.0, 0.3, "sombre"), Band(0.7, 1.01, "cheerful")),
    "speechiness": (Band(0.33, 0.66, "rap-like"), Band(0.66, 1.01, "spoken")),
    "instrumentalness": (Band(0.5, 1.01, "instrumental"),),
    "liveness": (Band(0.8, 1.01, "live"),),
    "duration_ms": (Band(0.0, 150_000.0, "short"), Band(360_000.0, 1e12, "long")),
}

# Feature -> (more of it, less of it), as "this one is ___".
COMPARATIVES: dict[str, tuple[str, str]] = {
    "energy": ("livelier", "calmer"),
    "acousticness": ("more acoustic", "less acoustic"),
    "loudness": ("louder", "quieter"),
    "tempo": ("faster", "slower"),
    "danceability": ("more danceable", "less danceable"),
    "valence": ("happier", "sadder"),
    "speechiness": ("wordier", "less wordy"),
    "instrumentalness": ("more instrumental", "more vocal"),
    "liveness": ("more live-sounding", "more studio-like"),
    "duration_ms": ("longer", "shorter"),
}

# Documented per-track thresholds a cluster's members are counted against:
# name -> (feature, threshold, True when the share counts values at or above
# it, False below it). A cluster's mean hides a mix (half instrumental, half
# sung averages 0.45); the share of members past the threshold does not.
SHARE_THRESHOLDS: dict[str, tuple[str, float, bool]] = {
    "instrumental": ("instrumentalness", 0.5, True),
    "spoken": ("speechiness", 0.66, True),
    "rap": ("speechiness", 0.33, True),  # rap-like or spoken
    "live": ("liveness", 0.8, True),
    "acoustic": ("acousticness", 0.6, True),
    "energetic": ("energy", 0.7, True),
    "calm": ("energy", 0.4, False),
}


def level_word(feature: str, value: float | None) -> str | None:
    """The listener's word for ``value`` of ``feature``, or None when the value is unremarkable."""
    if value is None or value != value:  # NaN
        return None
    for band in LEVELS.get(feature, ()):
        if band.low <= value < band.high:
            return band.word
    return None


def is_level(feature: str, value: float | None, word: str) -> bool:
    """True when ``value`` of ``feature`` falls in the band called ``word``."""
    return level_word(feature, value) == word


def join_words(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]
