"""Synthetic music catalog in the "flagship" CSV format.

Pure Python + numpy (no Django): the ``generate_catalog`` management command,
the tests and anyone with a shell can call :func:`generate_catalog`.

How a catalog is drawn
----------------------
* Artists are drawn first, each from one genre archetype of :data:`ARCHETYPES`
  (weighted by ``Archetype.weight``), with 1-3 genre names from the
  archetype's pool (a few per cent have none: ``[]``), a popularity, a
  follower count, a career start year and a small personal "style" offset on
  every audio feature.  An artist has about 8 songs on average (long tail).
* Songs are drawn around their artist's archetype: Beta distributions for the
  0-1 features, normal for tempo and loudness, lognormal for the duration.
  Within a song, energy pushes loudness up and acousticness down, and
  danceability pushes valence up, as in real catalogs.
* Every value is clipped into the ranges of ``songs.features`` (and tighter
  realistic ranges, see ``*_RANGE`` below).
* Names are plainly synthetic (word and syllable lists); a few carry accents,
  CJK/Hangul/Cyrillic script, commas or double quotes, so readers of the file
  must handle CSV quoting and UTF-8.

The work is done one batch of artists (about 50,000 songs) at a time with
vectorised numpy, so memory stays flat and a million songs take seconds.
The output is deterministic: the same ``songs`` and ``seed`` give the same
bytes (same numpy version; numpy only changes its random streams with notice).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from .features import FEATURE_NAMES
from .formats import FLAGSHIP_HEADER

__all__ = [
    "ARCHETYPES",
    "FEATURE_COLUMNS",
    "FLAGSHIP_HEADER",
    "Archetype",
    "generate_catalog",
]

# The header and feature order are the import's: one definition serves both.
FEATURE_COLUMNS: tuple[str, ...] = FEATURE_NAMES

# Realistic ranges the generator clips to; all inside the import ranges of
# songs.features (0-1, loudness -60..5 dB, tempo 0..300, duration > 0).
LOUDNESS_RANGE = (-45.0, 0.0)
TEMPO_RANGE = (50.0, 210.0)
DURATION_MS_RANGE = (60_000, 900_000)
YEAR_RANGE = (1920, 2023)

# Songs per chunk is about ARTISTS_PER_CHUNK * 8.
ARTISTS_PER_CHUNK = 6_000
MEAN_SONGS_PER_ARTIST = 8.0
MAX_SONGS_PER_ARTIST = 250

_BETA_FEATURES = (
    "danceability",
    "energy",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
)


@dataclass(frozen=True)
class Archetype:
    """A genre family: where its songs sit in feature space.

    The 0-1 features are ``(mean, concentration)`` of a Beta distribution
    (a = mean * c, b = (1 - mean) * c; a small concentration gives a wide or
    U-shaped spread).  ``loudness`` and ``tempo`` are ``(mean, sd)``;
    ``duration_s`` is ``(median seconds, sd of the log)``.
    """

    key: str
    genres: tuple[str, ...]
    weight: float
    danceability: tuple[float, float]
    energy: tuple[float, float]
    speechiness: tuple[float, float]
    acousticness: tuple[float, float]
    instrumentalness: tuple[float, float]
    liveness: tuple[float, float]
    valence: tuple[float, float]
    loudness: tuple[float, float]
    tempo: tuple[float, float]
    duration_s: tuple[float, float]
    explicit: float  # mean share of explicit songs
    year: tuple[float, float]  # career start year (mean, sd)
    popularity: float  # mean artist popularity 0-100
    major: float  # share of songs in a major key (mode=1)
    waltz: float  # share of songs in 3/4


def _arch(
    key,
    genres,
    weight,
    dance,
    energy,
    speech,
    acoustic,
    instr,
    live,
    valence,
    loud,
    tempo,
    dur,
    explicit,
    year,
    pop,
    major,
    waltz,
) -> Archetype:
    return Archetype(
        key,
        tuple(genres),
        weight,
        dance,
        energy,
        speech,
        acoustic,
        instr,
        live,
        valence,
        loud,
        tempo,
        dur,
        explicit,
        year,
        pop,
        major,
        waltz,
    )


# Hand-written archetype table, loosely calibrated on the per-genre means of
# real catalogs and pushed a little further apart at the extremes.  Columns:
#   key, genre pool (first = main genre), weight (share of artists),
#   danceability, energy, speechiness, acousticness, instrumentalness,
#   liveness, valence  -> (mean, concentration)
#   loudness (dB, sd), tempo (bpm, sd), duration (median s, log-sd),
#   explicit share, career start (year, sd), popularity, major share, 3/4 share
ARCHETYPES: tuple[Archetype, ...] = (
    _arch(
        "acoustic_folk",
        ["folk", "indie folk", "singer-songwriter", "stomp and holler", "chamber folk"],
        4,
        (0.5, 16),
        (0.28, 16),
        (0.04, 60),
        (0.85, 12),
        (0.05, 6),
        (0.13, 16),
        (0.42, 10),
        (-13.0, 2),
        (112, 13),
        (215, 0.17),
        0.02,
        (2008, 10),
        40,
        0.72,
        0.15,
    ),
    _arch(
        "ambient",
        ["ambient", "new age", "drone", "sleep", "dark ambient"],
        3,
        (0.24, 12),
        (0.14, 12),
        (0.04, 60),
        (0.86, 10),
        (0.88, 12),
        (0.11, 20),
        (0.1, 10),
        (-23.0, 3.2),
        (95, 15),
        (330, 0.24),
        0,
        (2010, 10),
        35,
        0.55,
        0.1,
    ),
    _arch(
        "classical",
        ["classical", "baroque", "early romantic era", "classical piano", "opera", "late romantic era"],
        4,
        (0.3, 14),
        (0.12, 12),
        (0.045, 60),
        (0.95, 24),
        (0.82, 10),
        (0.15, 16),
        (0.22, 8),
        (-22.0, 3.2),
        (100, 17),
        (290, 0.35),
        0,
        (1985, 25),
        20,
        0.6,
        0.3,
    ),
    _arch(
        "hip_hop",
        ["hip hop", "rap", "trap", "southern hip hop", "conscious hip hop", "east coast hip hop"],
        8,
        (0.76, 24),
        (0.66, 20),
        (0.3, 12),
        (0.12, 8),
        (0.01, 6),
        (0.17, 12),
        (0.5, 10),
        (-6.5, 1.6),
        (118, 17),
        (210, 0.14),
        0.65,
        (2014, 6),
        58,
        0.55,
        0.04,
    ),
    _arch(
        "spoken_word",
        ["spoken word", "comedy", "poetry", "hoerspiel", "stand-up comedy"],
        3,
        (0.55, 16),
        (0.45, 12),
        (0.88, 24),
        (0.8, 10),
        (0.01, 6),
        (0.45, 8),
        (0.45, 8),
        (-14.0, 2.8),
        (100, 15),
        (240, 0.35),
        0.25,
        (2000, 15),
        25,
        0.6,
        0.15,
    ),
    _arch(
        "edm_house",
        ["edm", "house", "electro house", "big room", "progressive house", "deep house"],
        5,
        (0.72, 24),
        (0.86, 24),
        (0.07, 24),
        (0.04, 6),
        (0.35, 4),
        (0.16, 12),
        (0.42, 10),
        (-5.0, 1.4),
        (126, 4),
        (215, 0.17),
        0.08,
        (2016, 4),
        55,
        0.5,
        0.01,
    ),
    _arch(
        "techno",
        ["techno", "minimal techno", "tech house", "dark techno"],
        3,
        (0.7, 24),
        (0.75, 20),
        (0.06, 24),
        (0.03, 6),
        (0.85, 12),
        (0.12, 16),
        (0.25, 10),
        (-9.5, 1.6),
        (130, 5),
        (380, 0.17),
        0.01,
        (2012, 7),
        35,
        0.4,
        0.01,
    ),
    _arch(
        "dance_pop",
        ["dance pop", "electropop", "post-teen pop", "europop"],
        5,
        (0.72, 24),
        (0.76, 24),
        (0.08, 20),
        (0.1, 8),
        (0.01, 6),
        (0.15, 12),
        (0.62, 12),
        (-5.2, 1.2),
        (120, 8),
        (205, 0.12),
        0.15,
        (2015, 6),
        62,
        0.55,
        0.02,
    ),
    _arch(
        "pop",
        ["pop", "art pop", "pop rock", "adult standards", "soft rock"],
        8,
        (0.62, 20),
        (0.6, 20),
        (0.06, 24),
        (0.3, 6),
        (0.01, 6),
        (0.14, 14),
        (0.5, 10),
        (-6.8, 1.6),
        (118, 14),
        (210, 0.13),
        0.1,
        (2012, 10),
        60,
        0.65,
        0.05,
    ),
    _arch(
        "rock",
        ["rock", "album rock", "classic rock", "hard rock", "alternative rock"],
        7,
        (0.5, 20),
        (0.72, 20),
        (0.05, 28),
        (0.12, 6),
        (0.05, 4),
        (0.2, 12),
        (0.52, 10),
        (-8.0, 2),
        (125, 15),
        (245, 0.17),
        0.05,
        (1988, 14),
        45,
        0.7,
        0.05,
    ),
    _arch(
        "metal",
        ["metal", "death metal", "thrash metal", "heavy metal", "metalcore"],
        4,
        (0.38, 18),
        (0.93, 30),
        (0.08, 20),
        (0.01, 6),
        (0.15, 4),
        (0.2, 12),
        (0.28, 10),
        (-5.0, 1.4),
        (130, 17),
        (280, 0.21),
        0.18,
        (2000, 12),
        40,
        0.45,
        0.05,
    ),
    _arch(
        "punk",
        ["punk", "pop punk", "hardcore punk", "skate punk"],
        3,
        (0.45, 20),
        (0.9, 28),
        (0.07, 20),
        (0.03, 6),
        (0.03, 6),
        (0.25, 10),
        (0.55, 10),
        (-5.5, 1.4),
        (160, 15),
        (160, 0.17),
        0.25,
        (1995, 12),
        38,
        0.65,
        0.03,
    ),
    _arch(
        "jazz",
        ["jazz", "bebop", "cool jazz", "hard bop", "vocal jazz", "contemporary jazz"],
        4,
        (0.52, 18),
        (0.32, 14),
        (0.06, 20),
        (0.78, 10),
        (0.55, 4),
        (0.18, 10),
        (0.5, 10),
        (-13.0, 2.4),
        (115, 18),
        (320, 0.24),
        0.005,
        (1965, 15),
        25,
        0.55,
        0.15,
    ),
    _arch(
        "blues",
        ["blues", "delta blues", "electric blues", "chicago blues"],
        3,
        (0.55, 18),
        (0.45, 16),
        (0.06, 20),
        (0.55, 8),
        (0.07, 6),
        (0.2, 10),
        (0.62, 12),
        (-11.0, 2.4),
        (115, 15),
        (220, 0.17),
        0.01,
        (1965, 12),
        28,
        0.7,
        0.15,
    ),
    _arch(
        "soul_rnb",
        ["soul", "r&b", "neo soul", "motown", "quiet storm"],
        4,
        (0.63, 20),
        (0.52, 18),
        (0.08, 20),
        (0.32, 8),
        (0.02, 6),
        (0.15, 12),
        (0.6, 12),
        (-8.5, 2),
        (110, 13),
        (235, 0.14),
        0.15,
        (1985, 18),
        45,
        0.6,
        0.06,
    ),
    _arch(
        "latin",
        ["reggaeton", "latin", "latin pop", "urbano latino", "bachata", "cumbia"],
        5,
        (0.77, 28),
        (0.74, 24),
        (0.1, 16),
        (0.2, 8),
        (0.01, 6),
        (0.16, 12),
        (0.72, 14),
        (-5.5, 1.4),
        (110, 15),
        (215, 0.14),
        0.3,
        (2016, 6),
        60,
        0.55,
        0.03,
    ),
    _arch(
        "country",
        ["country", "contemporary country", "country road", "bluegrass", "outlaw country"],
        4,
        (0.58, 20),
        (0.62, 18),
        (0.04, 28),
        (0.3, 8),
        (0.01, 6),
        (0.16, 12),
        (0.58, 12),
        (-7.0, 1.6),
        (122, 15),
        (205, 0.12),
        0.04,
        (2005, 12),
        50,
        0.8,
        0.12,
    ),
    _arch(
        "live",
        ["jam band", "roots rock", "heartland rock", "irish folk", "live rock"],
        3,
        (0.42, 16),
        (0.72, 16),
        (0.07, 16),
        (0.22, 6),
        (0.08, 4),
        (0.8, 12),
        (0.45, 10),
        (-8.0, 2),
        (125, 15),
        (300, 0.24),
        0.03,
        (1985, 15),
        35,
        0.65,
        0.08,
    ),
    _arch(
        "lofi",
        ["lo-fi beats", "chillhop", "lo-fi hip hop", "jazz boom bap"],
        3,
        (0.68, 20),
        (0.3, 14),
        (0.09, 16),
        (0.65, 8),
        (0.8, 10),
        (0.12, 16),
        (0.45, 10),
        (-12.5, 2),
        (85, 7),
        (145, 0.14),
        0.005,
        (2019, 2),
        50,
        0.4,
        0.02,
    ),
    _arch(
        "kpop",
        ["k-pop", "k-pop boy group", "k-pop girl group", "korean r&b"],
        3,
        (0.68, 24),
        (0.8, 24),
        (0.09, 16),
        (0.1, 8),
        (0.005, 6),
        (0.16, 12),
        (0.58, 12),
        (-4.3, 1),
        (122, 12),
        (205, 0.1),
        0.03,
        (2017, 4),
        65,
        0.5,
        0.02,
    ),
    _arch(
        "reggae",
        ["reggae", "roots reggae", "dancehall", "dub", "lovers rock"],
        3,
        (0.76, 28),
        (0.55, 16),
        (0.12, 12),
        (0.18, 8),
        (0.06, 4),
        (0.12, 14),
        (0.76, 16),
        (-8.5, 2),
        (100, 15),
        (235, 0.14),
        0.05,
        (1990, 15),
        40,
        0.55,
        0.03,
    ),
    _arch(
        "indie",
        ["indie pop", "indie rock", "modern rock", "shoegaze", "dream pop", "bedroom pop"],
        6,
        (0.52, 18),
        (0.6, 16),
        (0.045, 28),
        (0.28, 6),
        (0.12, 4),
        (0.15, 14),
        (0.42, 10),
        (-7.5, 1.8),
        (122, 15),
        (230, 0.14),
        0.06,
        (2013, 6),
        48,
        0.65,
        0.06,
    ),
    _arch(
        "chanson",
        ["vintage chanson", "chanson", "tango", "cabaret", "bolero"],
        2,
        (0.55, 16),
        (0.22, 12),
        (0.1, 12),
        (0.94, 24),
        (0.03, 6),
        (0.18, 10),
        (0.58, 10),
        (-14.5, 2.4),
        (108, 17),
        (180, 0.17),
        0,
        (1945, 12),
        5,
        0.6,
        0.2,
    ),
    _arch(
        "kids",
        ["children's music", "kindermusik", "nursery", "cancion infantil"],
        2,
        (0.68, 20),
        (0.45, 14),
        (0.12, 12),
        (0.55, 8),
        (0.02, 6),
        (0.17, 12),
        (0.78, 16),
        (-10.0, 2),
        (115, 13),
        (150, 0.21),
        0,
        (2010, 10),
        35,
        0.85,
        0.15,
    ),
)
ARCHETYPE_KEYS: tuple[str, ...] = tuple(a.key for a in ARCHETYPES)

# --- Word lists for plainly synthetic names --------------------------------
_ADJ = (
    "Amber",
    "Velvet",
    "Neon",
    "Silver",
    "Hollow",
    "Golden",
    "Paper",
    "Electric",
    "Quiet",
    "Crimson",
    "Broken",
    "Midnight",
    "Wild",
    "Lunar",
    "Copper",
    "Faded",
    "Glass",
    "Secret",
    "Violet",
    "Tender",
    "Restless",
    "Static",
    "Wandering",
    "Blue",
    "Distant",
    "Frozen",
    "Burning",
    "Gentle",
    "Little",
    "Endless",
    "Honey",
    "Iron",
    "Salt",
    "Scarlet",
    "Sleepy",
    "Cosmic",
    "Dusty",
    "Emerald",
    "Marble",
    "Northern",
    "Pale",
    "Rusty",
    "Sunday",
    "Velour",
    "Wooden",
    "Yellow",
    "Lazy",
    "Hidden",
    "Sugar",
    "Stormy",
)
_NOUN = (
    "Harbor",
    "Orchard",
    "Lantern",
    "Horizon",
    "Avenue",
    "Garden",
    "Meadow",
    "River",
    "Signal",
    "Window",
    "Mirror",
    "Summer",
    "Winter",
    "Parade",
    "Echo",
    "Heartbeat",
    "Daydream",
    "Highway",
    "Satellite",
    "Kingdom",
    "Lullaby",
    "Carousel",
    "Compass",
    "Ocean",
    "Letter",
    "Skyline",
    "Bonfire",
    "Postcard",
    "Thunder",
    "Paradise",
    "Motel",
    "Feather",
    "Rooftop",
    "Circus",
    "Island",
    "Mountain",
    "Valley",
    "Station",
    "Ballroom",
    "Lighthouse",
    "Balcony",
    "Comet",
    "Tangerine",
    "Telephone",
    "Voyage",
    "Wildfire",
    "Postbox",
    "Cinema",
)
# A few per cent of names use one of these (accents: readers must decode UTF-8).
_ACCENTED = ("Café", "Soirée", "Mañana", "Glück", "Über", "Niño", "Château", "Señorita")
_PLURAL = (
    "Foxes",
    "Lanterns",
    "Harbors",
    "Comets",
    "Sparrows",
    "Orchids",
    "Wolves",
    "Satellites",
    "Echoes",
    "Ravens",
    "Tides",
    "Owls",
    "Mirrors",
    "Pilots",
    "Glaciers",
    "Ghosts",
    "Magnolias",
    "Engines",
    "Moths",
    "Rivers",
    "Astronauts",
    "Cassettes",
    "Daisies",
    "Pelicans",
)
_FIRST_A = (
    "Mi",
    "Ra",
    "Jo",
    "Ka",
    "Le",
    "Sa",
    "Ti",
    "No",
    "Va",
    "El",
    "Da",
    "Ro",
    "Lu",
    "Ze",
    "Ny",
    "Is",
    "Ta",
    "Be",
    "O",
    "Fe",
    "Al",
    "Ce",
)
_FIRST_B = (
    "ra",
    "na",
    "lo",
    "ven",
    "ria",
    "ko",
    "la",
    "mir",
    "sa",
    "dan",
    "rel",
    "tta",
    "vin",
    "nie",
    "ssa",
    "mon",
    "rik",
)
_FIRST_ACCENTED = ("Zoé", "Mirélle", "Jürna", "Añela", "Renée", "Björa")
_LAST_A = (
    "Kes",
    "Mar",
    "Vol",
    "Hal",
    "Brin",
    "Dov",
    "Tor",
    "Sel",
    "Quin",
    "Rav",
    "Lind",
    "Fen",
    "Ost",
    "Gar",
    "Wen",
    "Corv",
    "Bel",
    "Ash",
    "Pell",
    "Thorn",
)
_LAST_B = (
    "sel",
    "ren",
    "ova",
    "berg",
    "ley",
    "ano",
    "mont",
    "vik",
    "ard",
    "ington",
    "ski",
    "hoff",
    "lund",
    "ez",
    "ani",
    "wick",
)
_SYL = (
    "ka",
    "zo",
    "ri",
    "va",
    "lu",
    "mo",
    "ne",
    "xi",
    "ta",
    "so",
    "be",
    "ra",
    "qu",
    "yo",
    "fi",
    "dra",
    "vel",
    "nor",
    "kai",
    "zen",
)
_FORMS = ("Sonata", "Étude", "Nocturne", "Prelude", "Suite", "Concerto", "Fugue", "Serenade", "Impromptu", "Rhapsody")
_NONLATIN_SONGS = (
    "夜の港",
    "青い果樹園",
    "星の灯台",
    "静かな窓",
    "별빛 항구",
    "푸른 정원",
    "Ночной сад",
    "Синий маяк",
    "Тихая гавань",
    "银色的河",
)
_NONLATIN_ARTISTS = ("星野ミラ", "青い狐たち", "별빛소년", "Мира Кессель", "Серебряные совы")

# Key frequencies roughly as in real catalogs (C, C#, D, ... B).
_KEY_P = np.array([12, 10, 10, 3, 8, 8, 7, 11, 6, 10, 7, 8], dtype=float)
_KEY_P /= _KEY_P.sum()

_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)

_NUM_STR = np.array([str(i) for i in range(100)], dtype=object)


def _obj(seq) -> np.ndarray:
    return np.array(seq, dtype=object)


_ADJ_O, _NOUN_O, _PLURAL_O, _ACCENTED_O = _obj(_ADJ), _obj(_NOUN), _obj(_PLURAL), _obj(_ACCENTED)
_FORMS_O, _NONLATIN_SONGS_O = _obj(_FORMS), _obj(_NONLATIN_SONGS)


class _Table:
    """The archetype table as numpy arrays indexed by archetype number."""

    def __init__(self, archetypes: tuple[Archetype, ...]):
        self.n = len(archetypes)
        w = np.array([a.weight for a in archetypes], dtype=float)
        self.p = w / w.sum()
        self.beta_mean = np.array([[getattr(a, f)[0] for f in _BETA_FEATURES] for a in archetypes], dtype=float)
        self.beta_conc = np.array([[getattr(a, f)[1] for f in _BETA_FEATURES] for a in archetypes], dtype=float)
        self.loud = np.array([a.loudness for a in archetypes], dtype=float)
        self.tempo = np.array([a.tempo for a in archetypes], dtype=float)
        self.dur = np.array([a.duration_s for a in archetypes], dtype=float)
        self.explicit = np.array([a.explicit for a in archetypes], dtype=float)
        self.year = np.array([a.year for a in archetypes], dtype=float)
        self.pop = np.array([a.popularity for a in archetypes], dtype=float)
        self.major = np.array([a.major for a in archetypes], dtype=float)
        self.waltz = np.array([a.waltz for a in archetypes], dtype=float)
        self.genres = [a.genres for a in archetypes]
        self.max_genres = max(len(g) for g in self.genres)
        self.pool_size = np.array([len(g) for g in self.genres])
        self.index = {a.key: i for i, a in enumerate(archetypes)}


_TABLE = _Table(ARCHETYPES)
_IDX = _TABLE.index
_E = _BETA_FEATURES.index("energy")
_D = _BETA_FEATURES.index("danceability")
_A = _BETA_FEATURES.index("acousticness")
_V = _BETA_FEATURES.index("valence")


# --- helpers ---------------------------------------------------------------
def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _base62_ids(rng: np.random.Generator, n: int) -> list[str]:
    """n random 22-character base62 ids (Spotify style)."""
    idx = rng.integers(0, 62, size=(n, 22), dtype=np.uint8)
    raw = np.ascontiguousarray(_ALPHABET[idx]).view("S22").ravel()
    return raw.astype("U22").tolist()


def _beta(rng: np.random.Generator, mean: np.ndarray, conc: np.ndarray) -> np.ndarray:
    a = np.maximum(mean * conc, 0.02)
    b = np.maximum((1.0 - mean) * conc, 0.02)
    x = rng.beta(a, b)
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)


def _person(fa, fb, la, lb) -> str:
    return f"{_FIRST_A[fa]}{_FIRST_B[fb]} {_LAST_A[la]}{_LAST_B[lb]}"


def _artist_names(rng: np.random.Generator, arch: np.ndarray) -> list[str]:
    n = len(arch)
    u = rng.random(n)
    fa = rng.integers(0, len(_FIRST_A), n)
    fb = rng.integers(0, len(_FIRST_B), n)
    la = rng.integers(0, len(_LAST_A), n)
    lb = rng.integers(0, len(_LAST_B), n)
    ad = rng.integers(0, len(_ADJ), n)
    pl = rng.integers(0, len(_PLURAL), n)
    sy = rng.integers(0, len(_SYL), (n, 3))
    extra = rng.integers(0, 1 << 30, n)
    names = []
    k = _IDX
    for i in range(n):
        a, ui, e = int(arch[i]), float(u[i]), int(extra[i])
        word = (_SYL[sy[i, 0]] + _SYL[sy[i, 1]]).capitalize()
        person = _person(fa[i], fb[i], la[i], lb[i])
        band = f"The {_ADJ[ad[i]]} {_PLURAL[pl[i]]}"
        if ui < 0.004:
            name = _NONLATIN_ARTISTS[e % len(_NONLATIN_ARTISTS)]
        elif ui < 0.02:
            name = f"{_FIRST_ACCENTED[e % len(_FIRST_ACCENTED)]} {_LAST_A[la[i]]}{_LAST_B[lb[i]]}"
        elif a == k["hip_hop"] and ui < 0.55:
            name = (
                ("Lil ", "MC ", "Young ", "Big ")[e % 4] + word
                if ui < 0.35
                else f"{word} {_SYL[sy[i, 2]].capitalize()}"
            )
        elif a in (k["edm_house"], k["techno"]) and ui < 0.6:
            if ui < 0.25:
                name = f"DJ {word}"
            elif ui < 0.45:
                name = (word + _SYL[sy[i, 2]]).upper()
            else:
                name = f"{word} & {_FIRST_A[fa[i]]}{_FIRST_B[fb[i]]}"
        elif a == k["jazz"] and ui < 0.5:
            name = f"{person} {('Trio', 'Quartet', 'Quintet', 'Sextet')[e % 4]}"
        elif a == k["classical"] and ui < 0.45:
            name = (
                f"{_LAST_A[la[i]]}{_LAST_B[lb[i]]} Chamber Ensemble" if ui < 0.2 else f"{word}ville Symphony Orchestra"
            )
        elif a == k["kpop"] and ui < 0.7:
            name = (word + _SYL[sy[i, 2]]).upper() + ("", "Z", " X", "9")[e % 4]
        elif a == k["spoken_word"] and ui < 0.4:
            name = f"The {_ADJ[ad[i]]} Hour"
        elif a == k["lofi"] and ui < 0.5:
            name = f"{word.lower()} beats"
        elif ui < 0.40:
            name = person
        elif ui < 0.75:
            name = band
        elif ui < 0.90:
            name = word + _SYL[sy[i, 2]]
        else:
            name = f"{_FIRST_A[fa[i]]}{_FIRST_B[fb[i]]} & the {_PLURAL[pl[i]]}"
        names.append(name)
    return names


_GENRE_CACHE: dict[tuple[int, tuple[int, ...]], str] = {}


def _genre_lists(rng: np.random.Generator, arch: np.ndarray) -> list[str]:
    """Per artist a Python list literal of 1-3 genres from its pool, or '[]'."""
    n = len(arch)
    t = _TABLE
    keys = rng.random((n, t.max_genres))
    keys[:, 0] *= 0.35  # the archetype's main genre comes first more often
    keys[np.arange(t.max_genres)[None, :] >= t.pool_size[arch][:, None]] = np.inf
    order = np.argsort(keys, axis=1)[:, :3]
    count = rng.choice(4, size=n, p=[0.03, 0.45, 0.34, 0.18])
    count = np.minimum(count, t.pool_size[arch])
    out = []
    for i in range(n):
        c = int(count[i])
        key = (int(arch[i]), tuple(int(j) for j in order[i, :c]))
        s = _GENRE_CACHE.get(key)
        if s is None:
            pool = t.genres[key[0]]
            s = repr([pool[j] for j in key[1]])
            _GENRE_CACHE[key] = s
        out.append(s)
    return out


def _song_names(rng: np.random.Generator, arch: np.ndarray) -> np.ndarray:
    n = len(arch)
    k = _IDX
    adj = _ADJ_O[rng.integers(0, len(_ADJ), n)]
    adj2 = _ADJ_O[rng.integers(0, len(_ADJ), n)]
    noun = _NOUN_O[rng.integers(0, len(_NOUN), n)]
    noun2 = _NOUN_O[rng.integers(0, len(_NOUN), n)]
    plural = _PLURAL_O[rng.integers(0, len(_PLURAL), n)]
    num = rng.integers(2, 25, n)
    u = rng.random(n)
    v = rng.random(n)

    name = adj + " " + noun
    m = (u >= 0.55) & (u < 0.67)
    name[m] = noun[m] + " " + noun2[m]
    m = (u >= 0.67) & (u < 0.75)
    name[m] = "The " + adj[m] + " " + noun[m]
    m = (u >= 0.75) & (u < 0.82)
    name[m] = noun[m] + " of " + plural[m]
    m = (u >= 0.82) & (u < 0.87)
    name[m] = adj[m] + " " + noun[m] + " Pt. " + _NUM_STR[num[m] % 4 + 2]
    m = (u >= 0.87) & (u < 0.91)
    name[m] = adj[m] + " " + noun[m] + " (" + adj2[m] + " Mix)"
    m = (u >= 0.91) & (u < 0.94)  # comma: the CSV writer must quote these
    name[m] = noun[m] + ", " + noun2[m]
    m = (u >= 0.94) & (u < 0.96)  # embedded double quotes
    name[m] = 'The "' + adj[m] + '" ' + noun[m]
    m = (u >= 0.96) & (u < 0.97)  # both
    name[m] = adj[m] + ", " + adj2[m] + ' "' + noun[m] + '"'
    m = (u >= 0.97) & (u < 0.985)  # accented words
    name[m] = _ACCENTED_O[num[m] % len(_ACCENTED)] + " " + noun[m]

    # Archetype flavour.
    m = (arch == k["classical"]) & (v < 0.6)
    name[m] = _FORMS_O[num[m] % len(_FORMS)] + " No. " + _NUM_STR[num[m]] + ": " + adj[m] + " " + noun[m]
    m = (arch == k["spoken_word"]) & (v < 0.5)
    name[m] = "Episode " + _NUM_STR[num[m] * 4 % 100] + ": The " + adj[m] + " " + noun[m]
    m = np.isin(arch, (k["edm_house"], k["techno"])) & (v >= 0.75)
    name[m] = name[m] + " - Extended Mix"
    m = (arch == k["live"]) & (v < 0.7)
    name[m] = name[m] + " - Live"
    m = (arch != k["live"]) & (v >= 0.985)
    name[m] = name[m] + " - Live"

    m = u >= 0.996  # a few titles in other scripts
    name[m] = _NONLATIN_SONGS_O[num[m] % len(_NONLATIN_SONGS)]
    return name


# --- the chunk --------------------------------------------------------------
def _chunk(rng: np.random.Generator, n_artists: int, limit: int) -> list[tuple]:
    """Draw n_artists artists and their songs, at most ``limit`` songs."""
    t = _TABLE
    A = n_artists

    # Artists.
    arch = rng.choice(t.n, size=A, p=t.p)
    extra = MEAN_SONGS_PER_ARTIST - 1
    counts = 1 + rng.negative_binomial(1.2, 1.2 / (1.2 + extra), size=A)
    counts = np.minimum(counts, MAX_SONGS_PER_ARTIST)
    csum = np.cumsum(counts)
    if csum[-1] > limit:  # the batch covers the rest of the catalog: cut
        last = int(np.searchsorted(csum, limit))  # first artist reaching the limit
        A = last + 1
        arch = arch[:A]
        counts = counts[:A].copy()
        counts[-1] -= int(csum[last]) - limit
    n = int(counts.sum())

    artist_ids = _base62_ids(rng, A)
    artist_names = _artist_names(rng, arch)
    genres = _genre_lists(rng, arch)
    artist_pop = np.clip(rng.normal(t.pop[arch], 14.0), 0, 100)
    followers = np.floor(10 ** (0.8 + artist_pop / 100 * 5.8 + rng.normal(0, 0.45, A))).astype(np.int64)
    start = np.clip(rng.normal(t.year[arch, 0], t.year[arch, 1]), YEAR_RANGE[0], YEAR_RANGE[1])
    span = rng.exponential(6.0, A)
    shift = rng.normal(0.0, 0.3, (A, len(_BETA_FEATURES)))
    loud_shift = rng.normal(0.0, 1.2, A)
    tempo_center = t.tempo[arch, 0] + rng.normal(0.0, 0.4, A) * t.tempo[arch, 1]
    dur_shift = rng.normal(0.0, 0.15, A)
    ex_mean = t.explicit[arch]
    ex_art = np.where(ex_mean > 0, rng.beta(np.maximum(ex_mean * 4, 1e-3), np.maximum((1 - ex_mean) * 4, 1e-3)), 0.0)

    # Songs.
    ai = np.repeat(np.arange(A), counts)
    sa = arch[ai]
    art_mean = _sigmoid(_logit(t.beta_mean[arch]) + shift)  # (A, 7)
    mean = art_mean[ai]  # (n, 7)
    conc = t.beta_conc[sa]
    feats = np.empty((n, len(_BETA_FEATURES)))
    for j in range(len(_BETA_FEATURES)):
        m = mean[:, j]
        if j == _A:  # more energy, less acoustic
            m = _sigmoid(_logit(m) - 3.0 * (feats[:, _E] - mean[:, _E]))
        elif j == _V:  # more danceable, happier
            m = _sigmoid(_logit(m) + 1.5 * (feats[:, _D] - mean[:, _D]))
        feats[:, j] = _beta(rng, m, conc[:, j])
    energy = feats[:, _E]
    loudness = (
        t.loud[sa, 0] + loud_shift[ai] + 14.0 * (energy - mean[:, _E]) + rng.normal(0.0, 1.0, n) * t.loud[sa, 1] * 0.8
    )
    loudness = np.clip(loudness, *LOUDNESS_RANGE)
    tempo = np.clip(tempo_center[ai] + rng.normal(0.0, 0.9, n) * t.tempo[sa, 1], *TEMPO_RANGE)
    duration = t.dur[sa, 0] * 1000.0 * np.exp(dur_shift[ai] + rng.normal(0.0, 1.0, n) * t.dur[sa, 1])
    duration = np.clip(np.rint(duration), *DURATION_MS_RANGE).astype(np.int64)

    key = rng.choice(12, size=n, p=_KEY_P)
    mode = (rng.random(n) < t.major[sa]).astype(np.int64)
    r = rng.random(n)
    time_sig = np.where(r < t.waltz[sa], 3, np.where(r > 0.988, 5, 4))
    explicit = (rng.random(n) < ex_art[ai]).astype(np.int64)

    year = np.minimum(np.floor(start[ai] + rng.random(n) * span[ai]), YEAR_RANGE[1]).astype(np.int64)
    day = rng.integers(0, 365, n)
    full = ((year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + day).astype("U10")
    year_only_p = np.where(year < 1960, 0.30, np.where(year < 1990, 0.12, 0.03))
    release = np.where(rng.random(n) < year_only_p, year.astype("U4"), full)

    song_pop = np.clip(np.rint(0.8 * artist_pop[ai] + rng.normal(0.0, 10.0, n) + 0.15 * (year - 1990)), 0, 100).astype(
        np.int64
    )
    song_ids = _base62_ids(rng, n)
    song_names = _song_names(rng, sa)

    # Interleave artists within the chunk, as a real export would.
    perm = rng.permutation(n)
    ai_p = ai[perm]

    def r3(x):
        return (np.round(x[perm], 3) + 0.0).tolist()

    def r4(x):
        return (np.round(x[perm], 4) + 0.0).tolist()

    cols = (
        [song_ids[i] for i in perm],
        song_names[perm].tolist(),
        song_pop[perm].tolist(),
        duration[perm].tolist(),
        explicit[perm].tolist(),
        [artist_ids[i] for i in ai_p],
        release[perm].tolist(),
        r3(feats[:, _D]),
        r3(energy),
        key[perm].tolist(),
        r3(loudness),
        mode[perm].tolist(),
        r4(feats[:, _BETA_FEATURES.index("speechiness")]),
        r4(feats[:, _A]),
        r4(feats[:, _BETA_FEATURES.index("instrumentalness")]),
        r4(feats[:, _BETA_FEATURES.index("liveness")]),
        r3(feats[:, _V]),
        r3(tempo),
        time_sig[perm].tolist(),
        followers[ai_p].tolist(),
        [genres[i] for i in ai_p],
        [artist_names[i] for i in ai_p],
        np.rint(artist_pop).astype(np.int64)[ai_p].tolist(),
    )
    return list(zip(*cols))


def _write(fh: TextIO, songs: int, seed: int, progress: Callable[[int], None] | None) -> int:
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(FLAGSHIP_HEADER)
    rng = np.random.default_rng(seed)
    written = 0
    while written < songs:
        remaining = songs - written
        n_artists = min(ARTISTS_PER_CHUNK, math.ceil(remaining / MEAN_SONGS_PER_ARTIST * 1.25) + 8)
        rows = _chunk(rng, n_artists, remaining)
        writer.writerows(rows)
        written += len(rows)
        if progress is not None:
            progress(written)
    return written


def generate_catalog(
    *,
    songs: int,
    seed: int,
    out: str | Path | TextIO,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a synthetic catalog of ``songs`` rows (plus the header) to ``out``.

    ``out`` is a path (written as UTF-8 through ``<path>.part`` and renamed at
    the end, so a crash never leaves a half file under the final name) or an
    open text stream (written as is; open files with ``newline=""``).
    ``progress`` is called with the number of rows written after each chunk.
    Returns the number of rows written (== ``songs``).
    """
    if isinstance(songs, bool) or not isinstance(songs, (int, np.integer)) or songs < 0:
        raise ValueError(f"songs must be a non-negative integer, got {songs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    songs, seed = int(songs), int(seed)
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        part = path.with_name(path.name + ".part")
        try:
            with open(part, "w", encoding="utf-8", newline="") as fh:
                n = _write(fh, songs, seed, progress)
            os.replace(part, path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return n
    return _write(out, songs, seed, progress)
