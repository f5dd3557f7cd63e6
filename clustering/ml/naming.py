"""Human names for clusters, from their profiles.

A name must be true of what a listener hears, whatever the catalog: a
cluster of radio hits at energy 0.6 and -7 dB is not "Quiet & Calm" even
when it is the calmest part of that catalog. So every rule reads two
things:

- **absolute levels** of the cluster's mean (and the share of its songs
  past Spotify's documented per-track thresholds, ``profile["levels"]``),
  with the meanings of :mod:`.scales`: speechiness > 0.66 spoken word,
  0.33-0.66 rap; instrumentalness > 0.5 instrumental; liveness > 0.8 live;
  energy, acousticness, loudness in dB and tempo in BPM in bands a listener
  names ("calm" below energy 0.4, "quiet" below -12 dB, "slow" below 90 BPM);
- **contrast with the catalog** (z-scores: "more danceable than usual"),
  which decides between names the levels allow, and gives comparative
  words ("Mellower", "Faster") where a cluster differs from the catalog
  but does not reach the level a plain word claims.

Each rule that fires proposes a name with a score; the strongest wins.
Where the catalog has genres and one is distinctive for the cluster (held
by >= 30 % of its songs and >= 1.5x as common as in the catalog), it joins
the name ("Party Tracks · Hip Hop"). Duplicates within a run get a second
trait ("Party Tracks · Faster").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .profiles import NOISE_LABEL, ClusterProfile

NOISE_NAME = "Unclustered / Noise"
FALLBACK_NAME = "Mainstream Mix"

# Trait words for disambiguation: feature -> ((word, absolute test), comparative)
# for above and below the catalog average. The plain word is used only when the
# cluster's mean passes the test (a documented level); else the comparative.
TRAITS: dict[str, tuple[tuple[str | None, object, str | None], tuple[str | None, object, str | None]]] = {
    "tempo": (("Fast", lambda v: v >= 130, "Faster"), ("Slow", lambda v: v < 90, "Slower")),
    "energy": (("Energetic", lambda v: v >= 0.7, "Livelier"), ("Calm", lambda v: v < 0.4, "Mellower")),
    "valence": (("Happy", lambda v: v >= 0.65, "Brighter"), ("Dark", lambda v: v < 0.35, "Darker")),
    "danceability": (("Danceable", lambda v: v >= 0.7, "More Danceable"), ("Laid-back", lambda v: v < 0.45, None)),
    "acousticness": (("Acoustic", lambda v: v >= 0.6, "More Acoustic"), ("Electric", lambda v: v < 0.05, None)),
    "loudness": (("Loud", lambda v: v >= -6, "Louder"), ("Quiet", lambda v: v < -12, "Softer")),
    "duration_ms": (("Long", lambda v: v >= 300_000, "Longer"), ("Short", lambda v: v < 165_000, "Shorter")),
    "liveness": (("Live", lambda v: v >= 0.5, "Live Feel"), ("Studio", lambda v: v < 0.2, None)),
    "instrumentalness": (("Instrumental", lambda v: v >= 0.5, None), (None, None, None)),
    # Low speechiness is the norm for music, not a trait worth naming.
    "speechiness": (("Wordy", lambda v: v >= 0.2, "Wordier"), (None, None, None)),
}
TRAIT_MIN_Z = 0.2
STRONG_TRAIT_Z = 0.5
# A genre joins the name when this share of the cluster carries it and it is
# this many times as common as in the catalog.
GENRE_MIN_SHARE = 0.3
GENRE_MIN_LIFT = 1.5


class Candidate(NamedTuple):
    score: float
    name: str
    defining: tuple[str, ...]  # features the name already expresses


def _candidates(p: ClusterProfile) -> list[Candidate]:
    z = p["z"]
    c = p["centroid"]
    shares = p.get("levels") or {}

    def zf(f: str) -> float:
        return float(z.get(f, 0.0))

    def level(f: str, default: float) -> float:
        value = c.get(f)
        return default if value is None else float(value)

    def share(key: str) -> float:
        return float(shares.get(key, 0.0))

    zd, ze, zv, za = zf("danceability"), zf("energy"), zf("valence"), zf("acousticness")
    zs, zi, zl, zlo = zf("speechiness"), zf("instrumentalness"), zf("liveness"), zf("loudness")
    zt, zdur = zf("tempo"), zf("duration_ms")
    # Unknown levels default to the middle of their scale: no absolute rule fires.
    energy, loud, tempo = level("energy", 0.55), level("loudness", -8.0), level("tempo", 115.0)
    dance, valence, acoustic = level("danceability", 0.55), level("valence", 0.5), level("acousticness", 0.3)
    speech, instr, live = level("speechiness", 0.05), level("instrumentalness", 0.0), level("liveness", 0.15)
    duration = level("duration_ms", 220_000.0)
    calm = energy < 0.4 or (energy < 0.5 and ze <= -0.5)  # what a listener calls calm
    quiet = loud < -12 or (loud < -9 and zlo <= -0.5)
    out: list[Candidate] = []

    # What the songs *are* (documented per-track meanings): a base score that
    # beats any contrast with the catalog.
    if speech >= 0.66 or share("spoken") >= 0.5:
        out.append(Candidate(5 + zs, "Spoken Word", ("speechiness",)))
    elif speech >= 0.25 or share("rap") >= 0.33:
        out.append(Candidate(4 + zs, "Rap / Spoken Word", ("speechiness",)))
    if live >= 0.5 or share("live") >= 0.4:
        out.append(Candidate(3 + zl, "Live Recordings", ("liveness",)))
    if instr >= 0.5 or share("instrumental") >= 0.5:
        if calm or acoustic >= 0.6:
            out.append(Candidate(3 + zi, "Instrumental / Ambient", ("instrumentalness", "energy", "acousticness")))
        elif energy >= 0.6 and dance >= 0.6:
            out.append(Candidate(3 + zi, "Electronic Instrumentals", ("instrumentalness", "energy", "danceability")))
        else:
            out.append(Candidate(3 + zi, "Instrumentals", ("instrumentalness",)))

    # What sets it apart in the catalog, where the level agrees.
    if (acoustic >= 0.6 or (acoustic >= 0.45 and za >= 0.6)) and (calm or quiet):
        out.append(Candidate(1 + (za - ze) / 2, "Chill Acoustic", ("acousticness", "energy", "loudness")))
    if zd >= 0.4 and ze >= 0.3 and zv >= 0.3 and energy >= 0.6 and dance >= 0.6:
        out.append(Candidate(1 + (zd + ze + zv) / 3, "Party Tracks", ("danceability", "energy", "valence")))
    if zd >= 0.5 and zv >= 0.4 and dance >= 0.6 and valence >= 0.5:
        out.append(Candidate(0.8 + (zd + zv) / 2, "Upbeat Dance", ("danceability", "valence")))
    if ze >= 0.6 and zv <= -0.3 and zd <= 0 and energy >= 0.75:
        out.append(Candidate(0.8 + (ze - zv) / 2, "Hard & Heavy", ("energy", "valence", "loudness")))
    if ze >= 0.6 and energy >= 0.7:
        out.append(Candidate(0.5 + (ze + max(zlo, 0.0)) / 2, "High Energy", ("energy", "loudness")))
    if ze >= 0.3 and za <= -0.5 and zd <= -0.3 and loud >= -7 and acoustic < 0.15:
        out.append(Candidate(0.5 + (ze - za - zd) / 3, "Loud & Electric", ("energy", "acousticness", "loudness")))
    if zv <= -0.6 and ze <= -0.3 and valence < 0.4 and energy < 0.5:
        out.append(Candidate(0.8 + (-zv - ze) / 2, "Mellow / Sad", ("valence", "energy")))
    if zv <= -0.6 and valence < 0.4:
        out.append(Candidate(0.5 - zv, "Dark & Moody", ("valence",)))
    if zv >= 0.6 and valence >= 0.6:
        out.append(Candidate(0.5 + zv, "Feel-Good", ("valence",)))
    if zd >= 0.6 and dance >= 0.65:
        out.append(Candidate(0.5 + zd, "Dance Grooves", ("danceability",)))
    if za >= 0.6 and acoustic >= 0.5:
        out.append(Candidate(0.5 + za, "Acoustic", ("acousticness",)))
    if (ze <= -0.6 or zlo <= -0.6) and calm and quiet:
        out.append(Candidate(0.5 + max(-ze, -zlo), "Quiet & Calm", ("energy", "loudness")))
    elif (ze <= -0.6 or zlo <= -0.6) and calm:
        out.append(Candidate(0.5 + max(-ze, -zlo), "Calm", ("energy", "loudness")))
    elif ze <= -0.6 or zlo <= -0.6:
        # Calmer than this catalog, but not calm: say it as a comparison.
        out.append(Candidate(0.3 + max(-ze, -zlo), "Mellower Mix", ("energy", "loudness")))
    if zt >= 0.6 and tempo >= 125:
        out.append(Candidate(0.4 + zt, "Fast Tempo", ("tempo",)))
    if zt <= -0.6 and tempo < 100:
        out.append(Candidate(0.4 - zt, "Slow Tempo", ("tempo",)))
    if zdur >= 0.6 and duration >= 270_000:
        out.append(Candidate(0.4 + zdur, "Long Tracks", ("duration_ms",)))
    if zdur <= -0.6 and duration < 180_000:
        out.append(Candidate(0.4 - zdur, "Short Tracks", ("duration_ms",)))
    out.append(Candidate(0.0, FALLBACK_NAME, ()))
    out.sort(key=lambda cand: -cand.score)
    return out


def _traits(p: ClusterProfile, exclude: Sequence[str], name: str) -> list[tuple[str, float]]:
    """(word, |z|) for features not already expressed by ``name``, strongest
    first: the plain word where the cluster's level earns it ("Fast" at 130
    BPM or more), else the comparative ("Faster")."""
    z = p["z"]
    centroid = p.get("centroid") or {}
    words = []
    for f in sorted(TRAITS, key=lambda f: -abs(z.get(f, 0.0))):
        v = z.get(f, 0.0)
        if f in exclude or abs(v) < TRAIT_MIN_Z:
            continue
        word, test, comparative = TRAITS[f][0 if v > 0 else 1]
        value = centroid.get(f)
        chosen = word if word and value is not None and test(value) else comparative
        if chosen and chosen.lower() not in name.lower():
            words.append((chosen, abs(v)))
    return words


def distinctive_genre(p: ClusterProfile) -> str | None:
    """The genre that sets the cluster apart, or None: the most common one
    held by >= GENRE_MIN_SHARE of its songs and >= GENRE_MIN_LIFT times as
    common as in the catalog."""
    for g in p.get("top_genres") or []:
        if g["share"] >= GENRE_MIN_SHARE and g["lift"] >= GENRE_MIN_LIFT:
            return genre_title(g["genre"])
    return None


def genre_title(genre: str) -> str:
    """'hip hop' -> 'Hip Hop', 'r&b' -> 'R&B', 'edm' stays readable as 'Edm'."""
    return " ".join(w.upper() if "&" in w else w[:1].upper() + w[1:] for w in genre.split())


def _with_genre(cands: list[Candidate], genre: str | None) -> list[Candidate]:
    if not genre:
        return cands
    return [
        c._replace(name=f"{genre} Mix") if c.name == FALLBACK_NAME else c._replace(name=f"{c.name} · {genre}")
        for c in cands
    ]


def name_clusters(profiles: Sequence[ClusterProfile]) -> dict[int, str]:
    """Return a unique, descriptive name per profile label.

    Noise (-1) is "Unclustered / Noise". Clusters claim names strongest
    first; a cluster whose best name is taken gets, in order of preference:
    that name plus a clear trait (|z| >= 0.5) the name does not already
    express ("Party Tracks · Fast"); a close alternative name (score >=
    80 % of its best); the name plus a weaker trait, then two traits; and
    only when nothing else is left a number ("Mainstream Mix (2)").
    """
    names: dict[int, str] = {}
    used: set[str] = set()
    for p in profiles:
        if p["label"] == NOISE_LABEL:
            names[NOISE_LABEL] = NOISE_NAME
            used.add(NOISE_NAME)
    ranked = [(p, _with_genre(_candidates(p), distinctive_genre(p))) for p in profiles if p["label"] != NOISE_LABEL]
    ranked.sort(key=lambda pc: (-pc[1][0].score, pc[0]["label"]))
    for p, cands in ranked:
        names[int(p["label"])] = name = _pick(p, cands, used)
        used.add(name)
    return names


def _pick(p: ClusterProfile, cands: list[Candidate], used: set[str]) -> str:
    best = cands[0]
    if best.name not in used:
        return best.name
    traits = _traits(p, best.defining, best.name)
    # A clear trait says best how this cluster differs from its namesake.
    for word, strength in traits:
        if strength >= STRONG_TRAIT_Z and f"{best.name} · {word}" not in used:
            return f"{best.name} · {word}"
    for alt in cands[1:]:
        if alt.name not in used and alt.score >= 0.8 * best.score and alt.score > 0:
            return alt.name
    words = [w for w, _ in traits]
    for w in words:
        if f"{best.name} · {w}" not in used:
            return f"{best.name} · {w}"
    for i, w in enumerate(words):
        for w2 in words[i + 1 :]:
            if f"{best.name} · {w} & {w2}" not in used:
                return f"{best.name} · {w} & {w2}"
    n = 2
    while f"{best.name} ({n})" in used:
        n += 1
    return f"{best.name} ({n})"
