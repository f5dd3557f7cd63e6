"""Settings and deployment checks under a given environment, in-process.

`musiccluster/settings.py` is evaluated again as a fresh module with exactly
the environment a test gives (plus a private VAR_DIR), so each variable can
be followed to its Django setting without starting a `manage.py` process
(each one costs seconds of imports). `deploy_check_ids` then runs Django's
`check --deploy` checks against those settings. `.ci/run` still runs the
real `manage.py check --deploy` once with README's production variables.
"""

import importlib.util
import os
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.checks import WARNING, run_checks
from django.test import override_settings

SETTINGS_FILE = Path(settings.BASE_DIR) / "musiccluster" / "settings.py"

# README's "Production" example (with placeholder hosts: the checks connect
# to neither the database nor the broker).
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3J9-vXq2_pL8wZr5TnB7yHc4mUe6aFd1gSo0iKjQx9VbN2MtRlYpWzCsEuAhD",
    "DATABASE_URL": "postgres://mc@db.invalid:5432/musiccluster",
    "CELERY_BROKER_URL": "redis://redis.invalid:6379/0",
    "CACHE_URL": "redis://redis.invalid:6379/1",
    "ALLOWED_HOSTS": "music.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://music.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}

# Variables of the test run itself (the Postgres pass sets some) must not leak in.
OURS = {
    *PRODUCTION,
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by the browser tests
    "VAR_DIR",
    "MODEL_DIR",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "CELERY_RESULT_BACKEND",
    "NUM_PROXIES",
    "DATA_UPLOAD_MAX_MEMORY_SIZE",
    "PREDICT_MAX_NEIGHBOUR_LOOKUPS",
    "CSP_REPORT_ONLY",
    "SECRET_KEY_FILE",
    "IMPORT_UPLOAD_MAX_BYTES",
    "IMPORT_UPLOAD_KEEP_DAYS",
}
OUR_PREFIXES = ("SECURE_", "API_", "AXES_")

# Settings that define the running process (its apps, its database
# connections): the checks are run against the test process's own.
KEPT = {"INSTALLED_APPS", "DATABASES", "BASE_DIR"}


def settings_under(env: dict[str, str], var_dir: Path) -> dict:
    """The settings (upper-case names) that `env` gives, evaluated in-process."""
    clean = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith(OUR_PREFIXES)}
    spec = importlib.util.spec_from_file_location("musiccluster_settings_under_test", SETTINGS_FILE)
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(os.environ, {**clean, "VAR_DIR": str(var_dir), **env}, clear=True):
        spec.loader.exec_module(module)
    return {name: getattr(module, name) for name in dir(module) if name.isupper()}


def deploy_check_ids(env: dict[str, str], var_dir: Path) -> set[str]:
    """Ids of the warnings and errors `manage.py check --deploy` gives under `env`."""
    values = settings_under(env, var_dir)
    with override_settings(**{k: v for k, v in values.items() if k not in KEPT}):
        messages = run_checks(include_deployment_checks=True)
    return {message.id for message in messages if message.level >= WARNING}
