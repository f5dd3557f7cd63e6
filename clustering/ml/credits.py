"""Joint artist credits: "Lady Gaga, Bruno Mars" names two artists.

Exports credit a song to one artist string, and a third of the songs of a
chart export are collaborations ("ROSÉ, Bruno Mars", "Drake feat. Future").
Stored as one artist each, a collaboration's sound profile in the similarity
embedding is the mean of its one or two songs: it says nothing the song
does not. Read as the artists it names, it is the mean of those artists'
profiles, each over every song that names them, solo or joint.

Splitting is only used for that profile (the catalog keeps the credit as
the export gives it), so a band whose name holds a separator ("Earth, Wind
& Fire", "Tyler, The Creator") costs nothing: its parts only ever appear
together, and their profiles are the band's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

# ", " "; " " & " and the featuring forms exports use between artists. Not
# "/" (AC/DC) nor "and" (a word of many band names).
_SEPARATORS = re.compile(
    r"\s*[,;]\s*|\s+&\s+|\s+(?:feat\.?|ft\.?|featuring|x|×)\s+|\s*\((?:feat\.?|ft\.?|featuring)\s+|\)\s*$",
    re.IGNORECASE,
)


def credit_members(credit: str) -> list[str]:
    """The artists a credit names, case-folded, in order, without repeats:
    ``"Lady Gaga, Bruno Mars"`` → ``["lady gaga", "bruno mars"]``."""
    out: list[str] = []
    for part in _SEPARATORS.split(credit or ""):
        name = " ".join(part.split()).casefold()
        if name and name not in out:
            out.append(name)
    return out


def credit_pairs(artist_ids: Iterable[int], credits: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """(artist id, member code) pairs for artists with these credits: artist
    ``ids[i]`` names the members ``codes[j]`` of its pairs; equal names get
    equal codes across artists."""
    codes: dict[str, int] = {}
    pair_artists: list[int] = []
    pair_codes: list[int] = []
    for artist, credit in zip(artist_ids, credits, strict=True):
        for name in credit_members(credit) or [f"#{artist}"]:
            pair_artists.append(int(artist))
            pair_codes.append(codes.setdefault(name, len(codes)))
    return np.asarray(pair_artists, dtype=np.int64), np.asarray(pair_codes, dtype=np.int64)
