from django.urls import path

from . import views

app_name = "songs"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/", views.search, name="search"),
    path("songs/<str:external_id>/", views.song_detail, name="song"),
    path("recommend/", views.recommend, name="recommend"),
    path("path/", views.path_page, name="path"),
    path("map.json", views.map_json, name="map_json"),
    path("search.json", views.search_json, name="search_json"),
    path("artists.json", views.artists_json, name="artists_json"),
    path("favicon.ico", views.favicon, name="favicon"),
]
