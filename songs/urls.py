from django.urls import path

from . import views

app_name = "songs"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/", views.search, name="search"),
    path("songs/<str:external_id>/", views.song_detail, name="song"),
    path("map.json", views.map_json, name="map_json"),
    path("search.json", views.search_json, name="search_json"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Phase 2 of issue #5 builds these; until then the nav links explain what comes.
    path("recommend/", views.placeholder, name="recommend", kwargs={
        "nav": "recommend", "title": "Recommendations",
        "text": "Pick seed songs, artists or genres, set target and bound values for the audio features, and get "
                "recommendations from your own catalog. This page arrives with the next phase of the web site."}),
    path("path/", views.placeholder, name="path", kwargs={
        "nav": "path", "title": "Path between two songs",
        "text": "Choose a start song and an end song and get a playlist that moves smoothly from one to the other. "
                "This page arrives with the next phase of the web site."}),
    path("playlists/", views.placeholder, name="playlists", kwargs={
        "nav": "playlists", "title": "Playlists",
        "text": "Browse, create (from a song radio or from recommendations), edit and export playlists as M3U, CSV "
                "or JSON. This page arrives with the next phase of the web site; a cluster's songs can already be "
                "exported from its page."}),
]
