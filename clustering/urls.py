from django.urls import path

from . import views

app_name = "clustering"
urlpatterns = [
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster"),
    path("predict/", views.predict, name="predict"),
    path("runs/", views.runs, name="runs"),
]
