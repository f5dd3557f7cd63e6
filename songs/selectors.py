"""Read queries of the catalog."""
from django.db.models import QuerySet

from .models import ImportJob, Song


def song_list(*, search: str = "") -> QuerySet[Song]:
    qs = Song.objects.select_related("artist", "cluster")
    if search:
        qs = qs.filter(name__icontains=search) | qs.filter(artist__name__icontains=search)
    return qs.order_by("id")


def catalog_counts() -> dict:
    from .models import Artist

    return {"songs": Song.objects.count(), "artists": Artist.objects.count()}


def import_job_latest() -> ImportJob | None:
    return ImportJob.objects.order_by("-created_at").first()
