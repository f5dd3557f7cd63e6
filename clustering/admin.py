from django.contrib import admin

from .models import Cluster, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "algorithm", "status", "is_active", "n_clusters", "n_songs", "created_at")
    list_filter = ("status", "algorithm", "is_active")


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "run", "label", "size")
    list_filter = ("run",)
