from django.urls import path

from . import views

app_name = "songs"
urlpatterns = [
    path("search/", views.search, name="search"),
    path("search.json", views.search_json, name="search_json"),
    path("artists.json", views.artists_json, name="artists_json"),
    path("favicon.ico", views.favicon, name="favicon"),
]
