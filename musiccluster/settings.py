"""Settings for musiccluster.

Two runtime modes, chosen by the environment:
- embedded default (no variables): SQLite under var/, Celery tasks run eagerly
  in-process, model artifacts under var/models/, DEBUG off (DEBUG=1 opts in)
  and a secret key generated once into var/secret_key;
- production: DATABASE_URL=postgres://..., CELERY_BROKER_URL=redis://...,
  SECRET_KEY set, DEBUG off.
"""

import contextlib
import importlib.util
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

DATABASE_URL = os.environ.get("DATABASE_URL", "")
EMBEDDED = not DATABASE_URL


def secret_key_file(path: Path) -> str:
    """The secret key kept in ``path``: created once (random, mode 0600), then
    read back on every start, so sessions and signed links outlive a restart.

    The file appears whole or not at all (written aside, then linked into
    place), and two processes starting at once end up with the same key.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(50) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process got there first: its key wins
                os.link(part, path)
        finally:
            part.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(OSError):  # not ours to change: use it as it is
            path.chmod(0o600)  # a copied or restored file: readable by its owner only
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ImproperlyConfigured(
            f"The secret key file {path} holds no usable key (under 32 characters); delete it to generate a new one."
        )
    return key


# DEBUG is an explicit opt-in (DEBUG=1), in the embedded mode too: a site left
# running shows its own error pages, never tracebacks and settings.
DEBUG = env_bool("DEBUG", False)
# SECRET_KEY wins when set. The embedded mode (and a DEBUG run) otherwise keeps
# a generated key in VAR_DIR/secret_key (0600), the same across restarts; with a
# real database and DEBUG off a missing SECRET_KEY is an error, never a default
# (every web process and worker must share one key).
SECRET_KEY = os.environ.get("SECRET_KEY", "")
SECRET_KEY_FILE = Path(os.environ.get("SECRET_KEY_FILE", VAR_DIR / "secret_key"))
if not SECRET_KEY:
    if EMBEDDED or DEBUG:
        SECRET_KEY = secret_key_file(SECRET_KEY_FILE)
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set and DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served by this site: no CDN
    "songs",
    "clustering",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After a request or response of LARGE_REQUEST_BYTES or more, its memory is
    # handed back to the system once answered (musiccluster/memory.py).
    "musiccluster.memory.ReleaseMemoryMiddleware",
    # A dead database is a 503, a NUL byte in the input a 400 (musiccluster/middleware.py).
    "musiccluster.middleware.ServiceErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "musiccluster.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "musiccluster.wsgi.application"

if EMBEDDED:
    # The embedded database lives here; create it on first use.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "static").mkdir(exist_ok=True)

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        # No `SELECT 1` before each request's first query (it was ~24 % of a web
        # worker's time on similar songs). A request that meets a connection a
        # database restart broke answers 503 and the connection is closed
        # (musiccluster/middleware.py), so the next request reconnects. Celery
        # workers turn the check back on (musiccluster/celery.py): a task that
        # failed on a stale connection would fail a whole run.
        conn_health_checks=env_bool("CONN_HEALTH_CHECKS", False),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded database is written by the web process and eager tasks at
    # once; wait for the write lock instead of failing at the first conflict.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Site sign-in (/accounts/login/); the admin keeps its own login page.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/playlists/"
LOGOUT_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Plotly's browser bundle is served from the pinned Python package (no copy in
# the repository, no CDN): /static/vendor/plotly/plotly.min.js.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/plotly", Path(importlib.util.find_spec("plotly").submodule_search_locations[0]) / "package_data"),
]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploaded CSVs (admin imports). With workers on other machines this folder
# must be shared storage (NFS, a mounted volume).
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "uploads"))
MEDIA_URL = "media/"
# DATA_UPLOAD_MAX_MEMORY_SIZE: the "Abuse limits" block below.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# The largest CSV an upload (the admin's import, POST /api/imports/) may be.
# A bigger file is refused while it arrives, before anything of it is stored
# (songs/uploads.py), with a message naming this limit; larger catalogs are
# imported on the server with `manage.py import_songs PATH`.
IMPORT_UPLOAD_MAX_BYTES = int(os.environ.get("IMPORT_UPLOAD_MAX_BYTES", str(512 * 1024 * 1024)))
# Days an uploaded CSV stays in MEDIA_ROOT after its import ended (succeeded
# or failed); 0 removes it as soon as the import ends. Uploads no job owns any
# more (a deleted job) go too. Pruned after every import and by the workers' sweeper.
IMPORT_UPLOAD_KEEP_DAYS = float(os.environ.get("IMPORT_UPLOAD_KEEP_DAYS", "0"))
FILE_UPLOAD_HANDLERS = [
    "songs.uploads.UploadSizeLimitHandler",  # first: it stops an oversized file before the others store it
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

MODEL_DIR = Path(os.environ.get("MODEL_DIR", VAR_DIR / "models"))
# The files of the last MODEL_KEEP_RUNS successful runs stay (rollbacks);
# older ones are removed when a run succeeds (the active run's never).
MODEL_KEEP_RUNS = int(os.environ.get("MODEL_KEEP_RUNS", "5"))
# The labels of the last LABEL_RUNS_KEPT successful runs stay (besides the
# active one's), so rolling back to them is a flag flip; older runs' labels
# are dropped (a partition each on Postgres). Rolling back to such a run
# labels the catalog again with its model, while its files are kept.
LABEL_RUNS_KEPT = int(os.environ.get("LABEL_RUNS_KEPT", "3"))
# How often a web process asks which run is active (seconds): an activation
# reaches every process within this time, without a restart.
MODEL_RECHECK_SECONDS = float(os.environ.get("MODEL_RECHECK_SECONDS", "1"))
# A process that serves one run's similar-song index and finds another run
# active loads the new index (its files' sha256 checked: ~1.9 s at 10M
# songs) in a thread, answering from the one it has until then, instead of
# making one request per process wait for it. "0": that request waits.
INDEX_LOAD_IN_BACKGROUND = os.environ.get("INDEX_LOAD_IN_BACKGROUND", "1") == "1"

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
# Without a broker, tasks run in-process: the embedded mode needs no worker.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that loses the broker keeps trying for as long as it takes (the
# default gives up after 100 attempts and the worker exits).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Tasks running when the broker connection drops cannot be acknowledged any
# more: cancel them, so that their messages are redelivered and redone (every
# task is idempotent: conditional claims, per-range labels).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Sending a task fails fast when the broker is down (the web request answers
# 503 and the sweeper below re-sends what was stored): short connection
# timeouts and one quick retry instead of ~19 s of waiting.
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CELERY_BROKER_CONNECTION_TIMEOUT", "2"))
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT}
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
# Seconds the front doors wait for the broker before they queue anything.
BROKER_CHECK_TIMEOUT = float(os.environ.get("BROKER_CHECK_TIMEOUT", "1"))

# --- Background work that recovers by itself --------------------------------
# Every worker runs a sweeper thread (musiccluster/celery.py) every
# WORK_SWEEP_SECONDS: it fails runs and import jobs whose heartbeat is older
# than TRAIN_STALE_SECONDS / IMPORT_STALE_SECONDS (removing their staging
# tables and partial files) and re-sends the task of every run or job still
# queued QUEUED_RESEND_SECONDS after its message was last sent (a message
# lost with the broker; a duplicate is a no-op: claims are conditional).
WORK_SWEEP_SECONDS = float(os.environ.get("WORK_SWEEP_SECONDS", "10"))
QUEUED_RESEND_SECONDS = float(os.environ.get("QUEUED_RESEND_SECONDS", "60"))
# A dead run or import is failed at most stale + sweep seconds after its last
# heartbeat: 45 + 10 = 55 s with the defaults (the bound is 60 s).
# Long steps refresh their row's heartbeat this often.
HEARTBEAT_SECONDS = float(os.environ.get("HEARTBEAT_SECONDS", "5"))
IMPORT_STALE_SECONDS = int(os.environ.get("IMPORT_STALE_SECONDS", "45"))

# --- Import -----------------------------------------------------------------
# A file with a larger share of bad rows is rejected whole.
IMPORT_MAX_REJECTED_SHARE = float(os.environ.get("IMPORT_MAX_REJECTED_SHARE", "0.1"))
# How many rejected rows an ImportJob keeps with their reasons.
IMPORT_REJECTED_SAMPLE = int(os.environ.get("IMPORT_REJECTED_SAMPLE", "100"))

# --- Training ---------------------------------------------------------------
TRAIN_SOFT_TIME_LIMIT = int(os.environ.get("TRAIN_SOFT_TIME_LIMIT", "3600"))
# A running run without a heartbeat for this long is marked failed.
TRAIN_STALE_SECONDS = int(os.environ.get("TRAIN_STALE_SECONDS", "45"))
TRAIN_BUSY_RETRY_SECONDS = int(os.environ.get("TRAIN_BUSY_RETRY_SECONDS", "5"))
# Past this many songs, activation labels id ranges of ACTIVATION_CHUNK_SONGS
# in parallel tasks (a chord) so workers on several machines share the work.
ACTIVATION_SPLIT_SONGS = int(os.environ.get("ACTIVATION_SPLIT_SONGS", "500000"))
ACTIVATION_CHUNK_SONGS = int(os.environ.get("ACTIVATION_CHUNK_SONGS", "200000"))

# --- REST framework ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # DRF's JSON written by orjson (musiccluster/renderers.py), and the browsable API.
    "DEFAULT_RENDERER_CLASSES": [
        "musiccluster.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Token first: an anonymous API call then gets 401 with
    # `WWW-Authenticate: Token` rather than a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        # The same tokens as `Bearer <key>` (the Spotify-compatible surface's clients send that).
        "musiccluster.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Throttles, their rates and NUM_PROXIES: the "Abuse limits" block below.
    # Every error is JSON with a `detail` sentence naming the field.
    "EXCEPTION_HANDLER": "musiccluster.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "musiccluster API",
    # The endpoint-by-endpoint reference (Markdown), shown at /api/docs/ and in /api/schema/.
    "DESCRIPTION": Path(__file__).with_name("api_reference.md").read_text(encoding="utf-8"),
    "VERSION": "0.1.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Deployment security: HTTPS, HSTS, cookies, proxies -------------------------
# Off by default (the embedded mode and the test servers speak plain HTTP);
# README's "Production" section lists the values `manage.py check --deploy`
# wants behind TLS. Each variable is named after the Django setting it sets.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe /healthz over plain HTTP: no redirect there.
SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT", [r"^healthz$"])
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
# Behind a TLS-terminating proxy: `HTTP_X_FORWARDED_PROTO,https` means "a
# request is secure when the proxy sets X-Forwarded-Proto: https". Only set
# it when the proxy always sets (or strips) that header.
_proxy_ssl_header = env_list("SECURE_PROXY_SSL_HEADER", [])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https.")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None

# --- Content-Security-Policy (django-csp) -------------------------------------
# Scripts and styles come from this site only (Plotly from /static/vendor/plotly,
# the pages' scripts from static/js, page data in json_script blocks, which
# are not executed); no inline script, no style= attribute. A nonce
# ({{ request.csp_nonce }}) is there for the rare inline block that cannot
# move. CSP_REPORT_ONLY=1 sends the same policy as report-only.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

MIDDLEWARE = [*MIDDLEWARE, "csp.middleware.CSPMiddleware"]
_csp = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # Plotly's mode bar icons and image export use data: and blob: URLs.
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [SELF],
    }
}
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
if CSP_REPORT_ONLY:
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp
else:
    CONTENT_SECURITY_POLICY = _csp

# --- Abuse limits: shared cache, throttles, client IPs, body size -----------
# Throttle counters live in Django's cache, which every web process must
# share. The default is a folder under VAR_DIR (FileBasedCache): shared by
# every process of one machine, so the embedded mode holds its limits however
# it is served. Several machines: CACHE_URL=redis://… on a Redis database of
# its own (not the broker's: cache.clear() empties the whole database, Celery's
# queues included). `locmem://` is per process (tests). `check --deploy` warns
# about a per-process cache, and about a one-machine cache beside a broker.
CACHE_URL = os.environ.get("CACHE_URL", "") or f"file://{VAR_DIR / 'cache'}"
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "musiccluster",
        }
    }
elif CACHE_URL.startswith("file://"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": CACHE_URL.removeprefix("file://"),
        }
    }
elif CACHE_URL == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(
        f"CACHE_URL must be redis://…, rediss://…, file:///path or locmem:// (got {CACHE_URL!r})."
    )
# With the folder cache, the throttles' histories are files of their own beside
# it (VAR_DIR/throttle by default), rewritten in place under a lock
# (musiccluster.throttling: a few system calls a request, and no request
# uncounted between processes); with any other cache they stay in the cache.
THROTTLE_HISTORY_DIR = None
if CACHE_URL.startswith("file://"):
    _cache_dir = Path(CACHE_URL.removeprefix("file://"))
    THROTTLE_HISTORY_DIR = _cache_dir.parent / (
        "throttle" if _cache_dir.name == "cache" else f"{_cache_dir.name}-throttle"
    )

# X-Forwarded-For is believed through this many proxies in front of the web
# processes (0: the connecting address is the client, whatever the header says).
REST_FRAMEWORK["NUM_PROXIES"] = int(os.environ.get("NUM_PROXIES", "0"))
# DRF's rates and sliding windows (musiccluster.throttling): anonymous clients
# per IP, signed-in ones per user, and the expensive endpoints' own rates.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "musiccluster.throttling.AnonRateThrottle",  # per client IP
    "musiccluster.throttling.UserRateThrottle",  # per signed-in user or token
    "musiccluster.throttling.ScopedRateThrottle",  # the expensive endpoints (throttle_scope on the view)
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": os.environ.get("API_ANON_RATE", "1200/minute"),
    "user": os.environ.get("API_USER_RATE", "2400/minute"),
    # Per user, or per IP for anonymous clients, on top of the two above.
    "predict_nearest": os.environ.get("API_PREDICT_NEAREST_RATE", "300/minute"),
    "recommendations": os.environ.get("API_RECOMMENDATIONS_RATE", "300/minute"),
    "path": os.environ.get("API_PATH_RATE", "120/minute"),
    "radio": os.environ.get("API_RADIO_RATE", "300/minute"),
}
# One request's work: neighbour lookups (vectors × nearest) in POST /api/predict/.
PREDICT_MAX_NEIGHBOUR_LOOKUPS = int(os.environ.get("PREDICT_MAX_NEIGHBOUR_LOOKUPS", "20000"))
# How many nearest-song predictions run at once on one host (file locks in
# EXPENSIVE_SLOT_DIR, shared by its web processes); more are refused at once
# with a 429. One slot leaves the second of two workers to everyone else.
API_EXPENSIVE_CONCURRENCY = int(os.environ.get("API_EXPENSIVE_CONCURRENCY", "1"))
EXPENSIVE_SLOT_DIR = Path(os.environ.get("EXPENSIVE_SLOT_DIR", VAR_DIR / "slots"))
# A request whose body or response is at least this large (a 10,000-vector
# predict: ~2 MB in, ~5 MB out) is followed by a garbage collection and a
# malloc_trim in the background (musiccluster/memory.py); 0: never.
LARGE_REQUEST_BYTES = int(os.environ.get("LARGE_REQUEST_BYTES", str(1_000_000)))
# Request bodies (not file uploads) above this size are refused: 413 under /api/.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(10 * 1024 * 1024)))

# --- Sign-in lockout (django-axes) ---------------------------------------------
# /accounts/login/ and /admin/login/: after AXES_FAILURE_LIMIT failures for one
# account, or from one client address, signing in is refused (429 and
# templates/registration/locked_out.html), even with the right password, for
# AXES_COOLOFF_MINUTES. Attempts are stored in the database (shared by every
# process); `manage.py axes_reset` (or axes_reset_username NAME) lifts locks.
from datetime import timedelta  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "axes"]
MIDDLEWARE = [*MIDDLEWARE, "axes.middleware.AxesMiddleware"]  # last, as django-axes asks
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # per account, and per address
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "musiccluster.login_lockout.client_ip"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # faiss.loader logs at INFO which CPU build it tried and could not load (AVX2), in every process.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "faiss.loader": {"level": "WARNING"}},
}

# JSON bodies: at most 100 levels deep and no NUL characters (musiccluster/parsers.py).
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "musiccluster.parsers.SafeJSONParser",
    "rest_framework.parsers.FormParser",
    "rest_framework.parsers.MultiPartParser",
]
