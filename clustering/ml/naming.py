"""Human names for clusters, from their profiles.

Rules read two things: absolute levels where Spotify documents a meaning
(per track, speechiness > 0.66 is spoken word and 0.33-0.66 rap-like,
liveness > 0.8 likely live, instrumentalness > 0.5 instrumental; rules use
the cluster *mean*, so lower bars: speechiness >= 0.25, liveness >= 0.5)
and z-scores against the catalog for everything relative ("more
danceable than usual"). Each rule that fires proposes a name with a
score; the strongest wins. Duplicates within a run get a second trait
("Party Tracks · Fast").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .profiles import NOISE_LABEL, ClusterProfile

NOISE_NAME = "Unclustered / Noise"
FALLBACK_NAME = "Mainstream Mix"

# Short trait words for disambiguation: feature -> (above average, below average).
TRAITS: dict[str, tuple[str | None, str | None]] = {
    "tempo": ("Fast", "Slow"),
    "energy": ("Energetic", "Calm"),
    "valence": ("Happy", "Dark"),
    "danceability": ("Danceable", "Laid-back"),
    "acousticness": ("Acoustic", "Electric"),
    "loudness": ("Loud", "Soft"),
    "duration_ms": ("Long", "Short"),
    "liveness": ("Live", "Studio"),
    "instrumentalness": ("Instrumental", "Vocal"),
    # Low speechiness is the norm for music, not a trait worth naming.
    "speechiness": ("Wordy", None),
}
TRAIT_MIN_Z = 0.2
STRONG_TRAIT_Z = 0.5


class Candidate(NamedTuple):
    score: float
    name: str
    defining: tuple[str, ...]  # features the name already expresses


def _candidates(p: ClusterProfile) -> list[Candidate]:
    z = p["z"]
    c = p["centroid"]

    def zf(f: str) -> float:
        return float(z.get(f, 0.0))

    def level(f: str) -> float | None:
        return c.get(f)

    zd, ze, zv, za = zf("danceability"), zf("energy"), zf("valence"), zf("acousticness")
    zs, zi, zl, zlo = zf("speechiness"), zf("instrumentalness"), zf("liveness"), zf("loudness")
    zt, zdur = zf("tempo"), zf("duration_ms")
    energy = level("energy")
    low_energy = ze <= -0.5 or (energy is not None and energy < 0.4)
    out: list[Candidate] = []

    # Absolute levels first: they describe what the songs *are*, so they
    # get a base score that beats any relative trait.
    speech = level("speechiness")
    if speech is not None and speech >= 0.66:
        out.append(Candidate(5 + zs, "Spoken Word", ("speechiness",)))
    elif (speech is not None and speech >= 0.25) or (zs >= 2.0 and (speech is None or speech >= 0.15)):
        out.append(Candidate(4 + zs, "Rap / Spoken Word", ("speechiness",)))
    live = level("liveness")
    if (live is not None and live >= 0.5) or (zl >= 1.5 and (live is None or live >= 0.3)):
        out.append(Candidate(3 + zl, "Live Recordings", ("liveness",)))
    instr = level("instrumentalness")
    if (instr is not None and instr >= 0.5) or (zi >= 1.5 and (instr is None or instr >= 0.3)):
        if low_energy or za >= 0.8:
            out.append(Candidate(3 + zi, "Instrumental / Ambient", ("instrumentalness", "energy", "acousticness")))
        elif ze >= 0.5 and zd >= 0.3:
            out.append(Candidate(3 + zi, "Electronic Instrumentals", ("instrumentalness", "energy", "danceability")))
        else:
            out.append(Candidate(3 + zi, "Instrumentals", ("instrumentalness",)))

    acoustic = level("acousticness")
    soft = low_energy or zlo <= -0.5
    if ((acoustic is not None and acoustic >= 0.6) or za >= 0.6) and soft:
        out.append(Candidate(1 + (za - ze) / 2, "Chill Acoustic", ("acousticness", "energy", "loudness")))
    if zd >= 0.4 and ze >= 0.3 and zv >= 0.3:
        out.append(Candidate(1 + (zd + ze + zv) / 3, "Party Tracks", ("danceability", "energy", "valence")))
    if zd >= 0.5 and zv >= 0.4:
        out.append(Candidate(0.8 + (zd + zv) / 2, "Upbeat Dance", ("danceability", "valence")))
    if ze >= 0.6 and zv <= -0.3 and zd <= 0:
        out.append(Candidate(0.8 + (ze - zv) / 2, "Hard & Heavy", ("energy", "valence", "loudness")))
    if ze >= 0.6:
        out.append(Candidate(0.5 + (ze + max(zlo, 0.0)) / 2, "High Energy", ("energy", "loudness")))
    if ze >= 0.3 and za <= -0.5 and zd <= -0.3:
        out.append(Candidate(0.5 + (ze - za - zd) / 3, "Loud & Electric", ("energy", "acousticness", "loudness")))
    if zv <= -0.6 and ze <= -0.3:
        out.append(Candidate(0.8 + (-zv - ze) / 2, "Mellow / Sad", ("valence", "energy")))
    if zv <= -0.6:
        out.append(Candidate(0.5 - zv, "Dark & Moody", ("valence",)))
    if zv >= 0.6:
        out.append(Candidate(0.5 + zv, "Feel-Good", ("valence",)))
    if zd >= 0.6:
        out.append(Candidate(0.5 + zd, "Dance Grooves", ("danceability",)))
    if za >= 0.6:
        out.append(Candidate(0.5 + za, "Acoustic", ("acousticness",)))
    if ze <= -0.6 or zlo <= -0.6:
        out.append(Candidate(0.5 + max(-ze, -zlo), "Quiet & Calm", ("energy", "loudness")))
    if zt >= 0.6:
        out.append(Candidate(0.4 + zt, "Fast Tempo", ("tempo",)))
    if zt <= -0.6:
        out.append(Candidate(0.4 - zt, "Slow Tempo", ("tempo",)))
    if zdur >= 0.6:
        out.append(Candidate(0.4 + zdur, "Long Tracks", ("duration_ms",)))
    if zdur <= -0.6:
        out.append(Candidate(0.4 - zdur, "Short Tracks", ("duration_ms",)))
    out.append(Candidate(0.0, FALLBACK_NAME, ()))
    out.sort(key=lambda cand: -cand.score)
    return out


def _traits(p: ClusterProfile, exclude: Sequence[str], name: str) -> list[tuple[str, float]]:
    """(word, |z|) for features not already expressed by ``name``, strongest first."""
    z = p["z"]
    words = []
    for f in sorted(TRAITS, key=lambda f: -abs(z.get(f, 0.0))):
        v = z.get(f, 0.0)
        if f in exclude or abs(v) < TRAIT_MIN_Z:
            continue
        word = TRAITS[f][0 if v > 0 else 1]
        if word and word.lower() not in name.lower():
            words.append((word, abs(v)))
    return words


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
    ranked = [(p, _candidates(p)) for p in profiles if p["label"] != NOISE_LABEL]
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
        if alt.name not in used and alt.score >= 0.8 * best.score and alt.name != FALLBACK_NAME:
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
