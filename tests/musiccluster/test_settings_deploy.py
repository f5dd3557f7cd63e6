"""Deployment settings from the environment: `check --deploy` is clean with
README's production variables, and each variable reaches its Django setting.

The settings are evaluated in-process under each environment
(tests/musiccluster/environment.py); `.ci/run` also runs the real
`manage.py check --deploy` with the same production variables.
"""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.musiccluster.environment import PRODUCTION, deploy_check_ids, settings_under

SECURITY = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_REDIRECT_EXEMPT",
)


def test_check_deploy_is_clean_with_the_documented_production_variables(tmp_path):
    assert deploy_check_ids(PRODUCTION, tmp_path) == set()


def test_check_deploy_warns_without_them(tmp_path):
    bare = {k: PRODUCTION[k] for k in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS")}
    found = deploy_check_ids(bare, tmp_path)
    assert {"security.W004", "security.W008", "security.W012", "security.W016"} <= found


def test_variables_reach_the_settings(tmp_path):
    on = settings_under(PRODUCTION, tmp_path)
    assert [on[name] for name in SECURITY] == [
        True, 31536000, True, True, True, True, ("HTTP_X_FORWARDED_PROTO", "https"), ["^healthz$"]
    ]  # fmt: skip
    off = settings_under({}, tmp_path)
    assert [off[name] for name in SECURITY] == [False, 0, False, False, False, False, None, ["^healthz$"]]


def test_a_malformed_proxy_header_is_refused(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECURE_PROXY_SSL_HEADER must be HEADER,VALUE"):
        settings_under({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"}, tmp_path)


@pytest.mark.django_db
def test_the_ssl_redirect_spares_healthz(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/clusters/").status_code == 301
    assert client.get("/healthz").status_code != 301
