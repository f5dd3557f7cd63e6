from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Site sign-in (accounts are created by admins: no registration, no e-mailed resets).
    path(
        "accounts/",
        include(
            [
                path("login/", auth_views.LoginView.as_view(), name="login"),
                path("logout/", auth_views.LogoutView.as_view(), name="logout"),
            ]
        ),
    ),
    path("api/", include("musiccluster.api_urls")),
    # Spotify's Web API paths and shapes over the same services (README, "Spotify-compatible API").
    path("spotify/v1/", include("clustering.spotify_urls")),
    path("", include("songs.urls")),
    path("", include("clustering.urls")),
]

handler404 = "musiccluster.api_errors.page_not_found"
