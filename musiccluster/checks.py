"""System checks of the deployment (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.caches, deploy=True)
def shared_cache(app_configs, **kwargs):
    """Throttle counters must be shared by every web process (and machine)."""
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG:
        return []
    if backend.endswith("LocMemCache"):
        return [
            Warning(
                "The cache is per process (LocMemCache): API throttle counters are not shared between web "
                "processes, so each one grants the full rate.",
                hint="Set CACHE_URL=redis://host:6379/1 (a Redis database of its own, not the broker's).",
                id="musiccluster.W001",
            )
        ]
    if backend.endswith("FileBasedCache") and settings.CELERY_BROKER_URL:
        return [
            Warning(
                "The cache is a folder on this machine (the default): web processes on other machines keep "
                "their own throttle counters.",
                hint="With more than one web machine set CACHE_URL=redis://host:6379/1 (not the broker's database).",
                id="musiccluster.W002",
            )
        ]
    return []
