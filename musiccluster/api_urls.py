from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from clustering.api import (
    ClusterViewSet,
    GenreSeedsView,
    PredictView,
    RecommendationsView,
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
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("predict/", PredictView.as_view(), name="predict"),
    path("songs/<path:external_id>/similar/", SimilarSongsView.as_view(), name="song-similar"),
    path("songs/<path:external_id>/radio/", SongRadioView.as_view(), name="song-radio"),
    path("recommendations/", RecommendationsView.as_view(), name="recommendations"),
    path("recommendations/genres/", GenreSeedsView.as_view(), name="recommendation-genres"),
    path("path/", SongPathView.as_view(), name="song-path"),
    path("", include(router.urls)),
]
