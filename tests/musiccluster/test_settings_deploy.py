"""Deployment settings from the environment: `check --deploy` is clean with
README's production variables, and each variable reaches its Django setting."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

# README's "Production" example (with placeholder hosts: check --deploy
# connects to neither the database nor the broker).
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
    "VAR_DIR",
    "MODEL_DIR",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "CELERY_RESULT_BACKEND",
    "NUM_PROXIES",
    "DATA_UPLOAD_MAX_MEMORY_SIZE",
    "PREDICT_MAX_NEIGHBOUR_LOOKUPS",
    "CSP_REPORT_ONLY",
}


def run_manage(args, env, tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith(("SECURE_", "API_", "AXES_"))}
    base.pop("DJANGO_SETTINGS_MODULE", None)
    base.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests; check --deploy rightly objects
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, "VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_variables(tmp_path):
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_check_deploy_warns_without_them(tmp_path):
    bare = {k: PRODUCTION[k] for k in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS")}
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], bare, tmp_path)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_variables_reach_the_settings(tmp_path):
    code = (
        "import json; from django.conf import settings as s; print(json.dumps([s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.SECURE_REDIRECT_EXEMPT]))"
    )
    result = run_manage(["shell", "-c", code], PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        True, 31536000, True, True, True, True, ["HTTP_X_FORWARDED_PROTO", "https"], ["^healthz$"]
    ]  # fmt: skip
    off = run_manage(["shell", "-c", code], {}, tmp_path)
    assert json.loads(off.stdout.strip().splitlines()[-1]) == [
        False,
        0,
        False,
        False,
        False,
        False,
        None,
        ["^healthz$"],
    ]


def test_a_malformed_proxy_header_is_refused(tmp_path):
    result = run_manage(["check"], {"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"}, tmp_path)
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be HEADER,VALUE" in result.stderr


@pytest.mark.django_db
def test_the_ssl_redirect_spares_healthz(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/clusters/").status_code == 301
    assert client.get("/healthz").status_code != 301
