"""System checks of the deployment (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.caches, deploy=True)
def shared_cache(app_configs, **kwargs):
    """Throttle counters must be shared by every web process."""
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.DEBUG or not backend.endswith("LocMemCache"):
        return []
    return [
        Warning(
            "The cache is per process (LocMemCache): API throttle counters are not shared between web "
            "processes, so each one grants the full rate.",
            hint="Set CACHE_URL=redis://host:6379/1 (a Redis database of its own, not the broker's).",
            id="musiccluster.W001",
        )
    ]
