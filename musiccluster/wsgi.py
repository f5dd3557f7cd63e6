import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musiccluster.settings")
application = get_wsgi_application()

# Everything imported so far (Django, DRF, scikit-learn, pandas: ~240,000
# objects) lives as long as the process: keep it out of the collector's
# full passes, which otherwise cost 100-140 ms in whichever request
# triggers one (measured by `manage.py bench`, pages phase).
gc.freeze()
