from django.urls import path

from . import views

app_name = "clustering"
urlpatterns = [
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster"),
    path("predict/", views.predict, name="predict"),
    path("runs/", views.runs, name="runs"),
    path("playlists/", views.playlist_list, name="playlists"),
    path("playlists/<int:pk>/", views.playlist_detail, name="playlist"),
    path("playlists/<int:pk>/delete/", views.playlist_delete, name="playlist_delete"),
    path("playlists/shared/<uuid:share_id>/", views.playlist_shared, name="playlist_shared"),
    path("playlists/radio/<str:external_id>/", views.song_radio, name="radio"),
]
