import gc
import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musiccluster.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    """Load the active model and similarity index now rather than in the first
    request (~0.2-0.5 s at 1M songs). Best effort: the site starts anyway."""
    from django.db import connections

    from clustering import artifacts, selectors

    try:
        run = selectors.active_run()
        if run is not None:
            artifacts.model_load(run)
            artifacts.index_load(run)
    except Exception as exc:  # no database yet, no model, a broken file: the requests will say
        logging.getLogger(__name__).warning("model warm-up skipped: %s", exc)
    finally:
        connections.close_all()  # never hand a connection across a fork (gunicorn --preload)


def _one_thread() -> None:
    """One BLAS/OpenMP thread on the request path (clustering.ml._threads)."""
    from django.conf import settings

    from clustering.ml._threads import serving_threads

    serving_threads(blas=not settings.CELERY_TASK_ALWAYS_EAGER)


_one_thread()
if os.environ.get("MODEL_WARM_UP", "1") == "1":
    _warm_up()

# Everything loaded so far (Django, DRF, scikit-learn, pandas: ~240,000
# objects) lives as long as the process: keep it out of the collector's
# full passes, which otherwise cost 100-140 ms in whichever request
# triggers one (measured by `manage.py bench`, pages phase).
gc.freeze()
