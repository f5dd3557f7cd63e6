from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from clustering.api import ClusterViewSet, PredictView, TrainingRunViewSet
from songs.api import SongViewSet

router = DefaultRouter()
router.register("songs", SongViewSet, basename="song")
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("runs", TrainingRunViewSet, basename="run")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("predict/", PredictView.as_view(), name="predict"),
    path("", include(router.urls)),
]
