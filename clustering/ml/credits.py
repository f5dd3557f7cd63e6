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
import pyarrow as pa
import pyarrow.compute as pc

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


# Names whose members Arrow can key in bulk, as credit_members would:
# printable ASCII (its only space is " ", its case-fold is lower case) with a
# non-space, and nothing that might separate artists (a superset of
# _SEPARATORS' cases; those names go through credit_members).
_PLAIN = r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$"
_MAYBE_SEPARATED = r"[,;&()]| (?:feat|ft|featuring|x)[. ]"


def credit_pairs(artist_ids: Iterable[int], credits) -> tuple[np.ndarray, np.ndarray]:
    """(artist id, member code) pairs for artists with these credits (str
    values or an Arrow string array): artist ``ids[i]`` names the members
    ``codes[j]`` of its pairs, in order; equal names get equal codes across
    artists, numbered in order of first appearance. A credit naming no one
    stands for its own artist.

    Most credits name one artist and no separator: Arrow keys those in bulk
    (1.25M artists took 13 s name by name), the rest go through
    :func:`credit_members`."""
    ids = np.asarray(artist_ids if isinstance(artist_ids, np.ndarray) else list(artist_ids), dtype=np.int64)
    if isinstance(credits, pa.ChunkedArray):
        credits = credits.combine_chunks()
    elif not isinstance(credits, pa.Array):
        credits = pa.array([str(c) if c is not None else "" for c in credits], pa.string())
    if len(credits) != len(ids):
        raise ValueError(f"{len(ids)} artist ids for {len(credits)} credits")
    credits = credits.fill_null("")
    plain = np.asarray(
        pc.and_(
            pc.match_substring_regex(credits, _PLAIN),
            pc.invert(pc.match_substring_regex(credits, _MAYBE_SEPARATED, ignore_case=True)),
        ).to_numpy(zero_copy_only=False),
        dtype=bool,
    )
    other = np.flatnonzero(~plain)
    split = [
        credit_members(c) or [f"#{a}"]
        for a, c in zip(ids[other].tolist(), credits.take(pa.array(other, pa.int64())).to_pylist(), strict=True)
    ]
    counts = np.ones(len(ids), dtype=np.int64)
    counts[other] = [len(m) for m in split]
    starts = np.cumsum(counts) - counts
    # Each member's place among the pairs (in input order): plain names' first, then the split ones'.
    places = np.concatenate(
        [starts[plain], *(starts[i] + np.arange(len(m)) for i, m in zip(other.tolist(), split, strict=True))]
    ).astype(np.int64)
    keyed = pc.utf8_lower(pc.utf8_trim(pc.replace_substring_regex(credits.filter(pa.array(plain)), " +", " "), " "))
    names = pa.concat_arrays([keyed, pa.array([n for m in split for n in m], pa.string())])
    by_place = np.empty(len(places), dtype=np.int64)
    by_place[places] = np.arange(len(places))
    codes = pc.dictionary_encode(names.take(pa.array(by_place))).indices.to_numpy(zero_copy_only=False)
    return np.repeat(ids, counts), codes.astype(np.int64)
