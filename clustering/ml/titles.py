"""Near-duplicate titles: one recording's variants share a title key.

Two songs are near-duplicates when they have the same artist and the same
title once version markers are stripped (:func:`title_key`). Stripped, in
brackets or after a dash (" - Live"): live recordings ("Live", "Live at
Wembley", "Live from …"), remasters ("Remastered 2011", "2011 Remaster"),
edits and mixes of the same recording ("Radio Edit", "Single Version",
"Album Version", "Extended Mix", "Original Mix", "Edit"), "Mono"/"Stereo",
"Acoustic" / "Acoustic Version", "Explicit"/"Clean", "Bonus Track",
"Deluxe", "Demo", "Sped Up"/"Slowed" (the same recording at another
speed), and guest credits anywhere after the title ("feat. X", "ft. X",
"featuring X", "(with X)").

Kept, so they count as different songs: remixes ("- David Guetta Remix":
another producer's track, often another sound), instrumentals (no vocals:
far apart in the features), covers and anything else in brackets
("Nocturne (Op. 9 No. 2)").
"""

from __future__ import annotations

import re
import unicodedata

_VERSION_WORDS = (
    r"live(?:\s+(?:at|from|in|on|version|recording|session)\b.*)?"
    r"|(?:\d{4}\s+)?(?:digital(?:ly)?\s+)?re-?master(?:ed)?(?:\s+version)?(?:\s+\d{4})?(?:\s+version)?"
    r"|(?:radio|single|album|short|clean|explicit|original|extended|edited)\s+(?:edit|version|mix|cut)"
    r"|edit|radio\s+edit|mono(?:\s+version)?|stereo(?:\s+version)?|(?:\d{4}\s+)?(?:stereo|mono)\s+mix"
    r"|acoustic(?:\s+version)?|explicit|clean|bonus\s+track|deluxe(?:\s+edition|\s+version)?|demo(?:\s+version)?"
    r"|sped\s+up(?:\s+version)?|slowed(?:\s*(?:\+|and|&)\s*reverb)?(?:\s+version)?"
)
# "(feat. X)", "[ft. X]", "(with X)", "(Live at …)", "[Remastered 2011]" …
_BRACKETED = re.compile(
    r"\s*[\(\[](?:(?:feat\.?|ft\.?|featuring|with)\s+[^\)\]]*|(?:" + _VERSION_WORDS + r"))\s*[\)\]]",
    re.IGNORECASE,
)
# " - Live", " - Remastered 2011", " - Radio Edit", " - Mono" at the end.
_DASHED = re.compile(r"\s+[-–—]\s+(?:" + _VERSION_WORDS + r")\s*$", re.IGNORECASE)
# An unbracketed guest credit runs to the end: "Song feat. X".
_GUEST = re.compile(r"\s+(?:feat\.|ft\.|featuring)\s+.*$", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\n\r\f\v]+")
# Titles with none of these (most) skip the patterns above.
_MARKS = ("(", "[", "-", "–", "—", "feat", "ft.")


def title_key(title: str) -> str:
    """The title with version markers and guest credits stripped, NFKC, lower
    case, one space between words: equal for one recording's variants."""
    text = unicodedata.normalize("NFKC", str(title))
    lowered = text.lower()
    if not any(mark in lowered for mark in _MARKS):
        return plain_title_key(lowered)
    previous = None
    while previous != text:  # "Song (feat. X) - Remastered 2011 - Live"
        previous = text
        text = _BRACKETED.sub("", text)
        text = _DASHED.sub("", text)
        text = _GUEST.sub("", text)
    return plain_title_key(text.lower()) or plain_title_key(lowered)


def plain_title_key(lowered: str) -> str:
    """The key of a title with no version marker (already NFKC and lower case):
    one space between words, none at the ends. Bulk builds compute the same
    with Arrow (NFKC, utf8_lower, ASCII whitespace) for unmarked titles."""
    return _SPACES.sub(" ", lowered).strip()


# A title that may hold a version marker (what title_key looks for), as an
# RE2 pattern for bulk pre-checks over lower-cased titles.
MARKED_RE2 = r"[\(\[\-–—]|feat|ft\."
