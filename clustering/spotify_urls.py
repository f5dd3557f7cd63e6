"""Routes of the Spotify-compatible surface, included at /spotify/v1/.

Spotify's paths, each with or without a trailing slash (clients such as
spotipy send `audio-features/?ids=` and `tracks/?ids=`). Ids hold no `/`
(the import refuses it).
"""

from django.urls import re_path

from . import spotify

urlpatterns = [
    re_path(r"^recommendations/?$", spotify.RecommendationsView.as_view(), name="spotify-recommendations"),
    re_path(r"^recommendations/available-genre-seeds/?$", spotify.GenreSeedsView.as_view(), name="spotify-genre-seeds"),
    re_path(r"^audio-features/?$", spotify.AudioFeaturesListView.as_view(), name="spotify-audio-features-list"),
    re_path(
        r"^audio-features/(?P<external_id>[^/]+)/?$", spotify.AudioFeaturesView.as_view(), name="spotify-audio-features"
    ),
    re_path(r"^tracks/?$", spotify.TracksView.as_view(), name="spotify-tracks"),
    re_path(r"^tracks/(?P<external_id>[^/]+)/?$", spotify.TrackView.as_view(), name="spotify-track"),
    re_path(
        r"^artists/(?P<external_id>[^/]+)/related-artists/?$",
        spotify.RelatedArtistsView.as_view(),
        name="spotify-related-artists",
    ),
    re_path(r"^artists/(?P<external_id>[^/]+)/?$", spotify.ArtistView.as_view(), name="spotify-artist"),
    re_path(r"^search/?$", spotify.SearchView.as_view(), name="spotify-search"),
]
