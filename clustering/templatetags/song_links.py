"""`{{ song.external_id|song_url }}`: a song page's address for any stored id.

`{% url 'clustering:song' id %}` would leave `/` and `..` as they are (or
fail to reverse), so an id like `a/b` or `../x` becomes another path; this
filter percent-encodes every reserved character, as static/js/site.js
(`MC.songUrl`) does. The route (`<path:external_id>`) takes the decoded id back.
"""

from urllib.parse import quote

from django import template
from django.urls import get_script_prefix

register = template.Library()


def song_path(external_id, kind: str = "songs") -> str:
    return f"{get_script_prefix()}{kind}/{quote(str(external_id), safe='')}/"


@register.filter
def song_url(external_id) -> str:
    """/songs/<id>/ with the id percent-encoded."""
    return song_path(external_id)


@register.filter
def radio_url(external_id) -> str:
    """/playlists/radio/<id>/ with the id percent-encoded."""
    return song_path(external_id, "playlists/radio")
