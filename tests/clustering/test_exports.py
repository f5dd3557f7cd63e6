"""M3U lines cannot be split or garbled by what a title or an artist holds."""

from types import SimpleNamespace

from clustering.playlists import playlist_export

NASTY = "A\rB\nC\tD\x0bE\x0cF\x1cG\x1dH\x1eI\x85J\u2028K\u2029L\x00M\x7fN\x9bO"


def test_m3u_strips_every_control_and_line_separator():
    # The M3U writer reads only these attributes.
    song = SimpleNamespace(
        external_id="s1", name=f"Song {NASTY}", artist=SimpleNamespace(name=f"Band {NASTY}"), duration_ms=200_000
    )
    content, _, _ = playlist_export(title=f"List {NASTY}", songs=[song], fmt="m3u", base_url="https://x.example")
    text = content.decode("utf-8")
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 5, lines  # #EXTM3U, #PLAYLIST, #EXTINF, location, ""
    for line in lines:
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in line), repr(line)
    assert lines[1] == "#PLAYLIST:List A B C D E F G H I J K L M N O"
    assert lines[2] == "#EXTINF:200,Band A B C D E F G H I J K L M N O - Song A B C D E F G H I J K L M N O"
    # str.splitlines() (what many readers use) sees the same four lines.
    assert text.splitlines() == lines[:-1]
