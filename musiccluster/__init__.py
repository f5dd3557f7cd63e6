# Load the Celery app when Django starts so @shared_task binds to it; the
# deployment checks (`manage.py check --deploy`) register on import.
from . import checks  # noqa: F401
from .celery import app as celery_app

__all__ = ("celery_app",)
