from django.urls import path

from .views import blocklist, browse, discover, playlists

app_name = "clustering"
urlpatterns = [
    path("", browse.dashboard, name="dashboard"),
    path("map.json", browse.map_json, name="map_json"),
    path("clusters/<int:pk>/", browse.cluster_detail, name="cluster"),
    path("songs/<path:external_id>/", browse.song_detail, name="song"),
    path("runs/", browse.runs, name="runs"),
    path("blocklist/", blocklist.blocklist, name="blocklist"),
    path("predict/", discover.predict, name="predict"),
    path("recommend/", discover.recommend, name="recommend"),
    path("path/", discover.path_page, name="path"),
    path("playlists/", playlists.playlist_list, name="playlists"),
    path("playlists/<int:pk>/", playlists.playlist_detail, name="playlist"),
    path("playlists/<int:pk>/delete/", playlists.playlist_delete, name="playlist_delete"),
    path("playlists/<int:pk>/regenerate/", playlists.playlist_regenerate, name="playlist_regenerate"),
    path("playlists/<int:pk>/share/rotate/", playlists.playlist_share_rotate, name="playlist_share_rotate"),
    path("playlists/shared/<uuid:share_id>/", playlists.playlist_shared, name="playlist_shared"),
    path("playlists/radio/<path:external_id>/", discover.song_radio, name="radio"),
]
