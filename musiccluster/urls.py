from django.contrib import admin
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("musiccluster.api_urls")),
    path("", include("songs.urls")),
    path("", include("clustering.urls")),
]

handler404 = "musiccluster.api_errors.page_not_found"
