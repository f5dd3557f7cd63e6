from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.conf import settings
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from clustering.api import (
    BlockedItemView,
    BlocklistView,
    ClusterViewSet,
    GenreSeedsView,
    PredictView,
    RecommendationsView,
    SimilarArtistsView,
    SimilarSongsView,
    SongPathView,
    SongRadioView,
    TrainingRunViewSet,
)
from clustering.playlist_api import PlaylistViewSet
from songs.api import ImportJobViewSet, SongViewSet

router = DefaultRouter()
router.register("songs", SongViewSet, basename="song")
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("runs", TrainingRunViewSet, basename="run")
router.register("playlists", PlaylistViewSet, basename="playlist")
router.register("imports", ImportJobViewSet, basename="import")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI under the CSP: its start script is a separate file (the split
    # view), but it injects <style> elements, allowed on this page only.
    path(
        "docs/",
        csp_replace({"style-src": [SELF, UNSAFE_INLINE]}, REPORT_ONLY=settings.CSP_REPORT_ONLY)(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="docs",
    ),
    path("predict/", PredictView.as_view(), name="predict"),
    path("songs/<path:external_id>/similar/", SimilarSongsView.as_view(), name="song-similar"),
    path("songs/<path:external_id>/radio/", SongRadioView.as_view(), name="song-radio"),
    path("recommendations/", RecommendationsView.as_view(), name="recommendations"),
    path("recommendations/genres/", GenreSeedsView.as_view(), name="recommendation-genres"),
    path("path/", SongPathView.as_view(), name="song-path"),
    path("artists/<path:external_id>/similar/", SimilarArtistsView.as_view(), name="artist-similar"),
    path("blocklist/", BlocklistView.as_view(), name="blocklist"),
    path("blocklist/<str:kind>/<path:value>/", BlockedItemView.as_view(), name="blocklist-item"),
    path("", include(router.urls)),
]
