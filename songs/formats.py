"""The input formats an import accepts (detected from the header by
songs.importing). A light module: pages and the API name the formats
without loading the importer (and pyarrow) into web processes."""

FLAGSHIP = "flagship"
SPOTIFY = "spotify"
FORMATS = (FLAGSHIP, SPOTIFY)

FLAGSHIP_HEADER: tuple[str, ...] = (
    "id_songs",
    "name_song",
    "popularity_songs",
    "duration_ms",
    "explicit",
    "id_artists",
    "release_date",
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
    "followers",
    "genres",
    "name_artists",
    "popularity_artists",
)
