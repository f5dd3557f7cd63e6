"""The embedded default is safe to leave running: DEBUG is an explicit opt-in,
the secret key is generated once into VAR_DIR/secret_key (0600) and kept,
the site answers with its own 404 and 500 pages, static files are collected
and served by whitenoise, and `make run` does all of that in one command.

Settings are evaluated in this process (tests/musiccluster/environment.py
re-runs musiccluster/settings.py under a chosen environment), not in a subprocess."""

import os
import stat
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from musiccluster.settings import secret_key_file
from tests.musiccluster.environment import settings_under


def load_settings(monkeypatch, var_dir: Path, **env) -> dict:
    """The settings as this environment (and nothing of the test run's) makes them."""
    return settings_under(env, var_dir)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- DEBUG and the secret key -----------------------------------------------------------


def test_no_variables_means_debug_off_and_a_kept_generated_key(monkeypatch, tmp_path):
    first = load_settings(monkeypatch, tmp_path)
    assert first["EMBEDDED"] is True and first["DEBUG"] is False
    key_file = tmp_path / "secret_key"
    assert first["SECRET_KEY"] == key_file.read_text().strip() and len(first["SECRET_KEY"]) >= 50
    assert "insecure" not in first["SECRET_KEY"]
    assert mode_of(key_file) == 0o600
    # A restart reads the same key back: sessions and signed links survive it.
    assert load_settings(monkeypatch, tmp_path)["SECRET_KEY"] == first["SECRET_KEY"]
    # Another site (another VAR_DIR) gets a key of its own.
    assert load_settings(monkeypatch, tmp_path / "other")["SECRET_KEY"] != first["SECRET_KEY"]
    # With DEBUG off, static files are the collected, hashed ones, served by whitenoise.
    assert first["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    middleware = first["MIDDLEWARE"]
    assert middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") == 1  # right after SecurityMiddleware
    assert first["STATIC_ROOT"] == tmp_path / "static"
    assert {"127.0.0.1", "localhost", "[::1]"} <= set(first["ALLOWED_HOSTS"]) and "*" not in first["ALLOWED_HOSTS"]


@pytest.mark.parametrize("value", ["1", "true", "on", "yes"])
def test_debug_is_an_explicit_opt_in(monkeypatch, tmp_path, value):
    loaded = load_settings(monkeypatch, tmp_path, DEBUG=value)
    assert loaded["DEBUG"] is True
    assert loaded["STORAGES"]["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert load_settings(monkeypatch, tmp_path, DEBUG="0")["DEBUG"] is False


def test_secret_key_variable_wins_and_no_file_is_written(monkeypatch, tmp_path):
    loaded = load_settings(monkeypatch, tmp_path, SECRET_KEY="from-the-environment-" + "x" * 40)
    assert loaded["SECRET_KEY"] == "from-the-environment-" + "x" * 40
    assert not (tmp_path / "secret_key").exists()


def test_production_without_a_secret_key_is_refused(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        load_settings(monkeypatch, tmp_path, DATABASE_URL="postgres://mc@db.invalid:5432/mc")
    assert not (tmp_path / "secret_key").exists()


def test_secret_key_file_is_created_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "var" / "secret_key"
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        key = secret_key_file(path)
    finally:
        os.umask(old_umask)
    assert mode_of(path) == 0o600
    assert path.read_text() == key + "\n"
    assert secret_key_file(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no .part left behind


def test_secret_key_file_of_another_process_wins_a_race(tmp_path, monkeypatch):
    """Two processes start at once: the one that links its key into place
    first wins, and the other reads that key instead of overwriting it."""
    path = tmp_path / "secret_key"
    theirs = "k" * 60
    real_link = os.link

    def link_after_another_process(src, dst):
        Path(dst).write_text(theirs + "\n")
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_another_process)
    assert secret_key_file(path) == theirs
    assert path.read_text().strip() == theirs
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_secret_key_file_with_loose_permissions_is_tightened(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("r" * 60 + "\n")
    path.chmod(0o644)
    assert secret_key_file(path) == "r" * 60
    assert mode_of(path) == 0o600


def test_an_unusable_secret_key_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("\n")
    with pytest.raises(ImproperlyConfigured, match=r"secret_key holds no usable key.*delete it"):
        secret_key_file(path)


# --- the site's own error pages -----------------------------------------------------------


@pytest.mark.django_db
def test_404_is_the_sites_page_without_internals(client):
    assert settings.DEBUG is False
    for url in ("/definitely-not-a-page/", "/songs/no-such-song/", "/clusters/999999/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "404.html" in [t.name for t in response.templates], url
        html = response.content.decode()
        assert 'id="not-found"' in html and "Page not found" in html
        assert 'class="topbar"' in html and "css/site.css" in html  # the site's layout and style
        assert url in html  # the address that was asked for, escaped
        for internal in ("Traceback", "URLconf", "matches the given query", "musiccluster.urls", "Http404"):
            assert internal not in html, (url, internal)


@pytest.mark.django_db
def test_404_escapes_the_address(client):
    html = client.get("/nope/<script>alert(1)</script>/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<code>/nope/%3Cscript%3Ealert%281%29%3C/script%3E/</code>" in html  # shown, percent-encoded


@pytest.mark.django_db
@pytest.mark.parametrize("static_files", ["plain storage", "manifest missing"])
def test_500_is_the_sites_page_without_internals(monkeypatch, settings, tmp_path, static_files):
    from songs import selectors

    if static_files == "manifest missing":  # DEBUG off before collectstatic: the 500 page still renders
        settings.STATIC_ROOT = tmp_path / "static"
        settings.STORAGES = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
        }

    def boom(**kwargs):
        raise RuntimeError("disk on fire at /srv/secret/path")

    monkeypatch.setattr(selectors, "song_search_page", boom)
    response = Client(raise_request_exception=False).get("/search/")
    assert response.status_code == 500
    html = response.content.decode()
    assert 'id="server-error"' in html and "Something went wrong" in html
    assert "css/site.css" in html and 'class="topbar"' in html
    for internal in ("disk on fire", "/srv/secret", "RuntimeError", "Traceback"):
        assert internal not in html


@pytest.mark.django_db
def test_with_debug_on_django_shows_its_debug_404(client, settings):
    settings.DEBUG = True
    response = client.get("/definitely-not-a-page/")
    assert response.status_code == 404 and "URLconf" in response.content.decode()


# --- make run ---------------------------------------------------------------------------


def make_dry_run(tmp_path, *args) -> str:
    """The commands `make run` would run (make -n: nothing is executed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "STATIC_ROOT")}
    env["VAR_DIR"] = str(tmp_path / "var")
    result = subprocess.run(
        ["make", "-n", "run", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_collects_static_files_and_serves_without_debug(tmp_path):
    commands = make_dry_run(tmp_path)
    assert "collectstatic --noinput" in commands
    assert "runserver 127.0.0.1:8000 --noreload" in commands
    assert commands.index("collectstatic") < commands.index("runserver")
    development = make_dry_run(tmp_path, "DEBUG=1")
    assert "collectstatic" not in development and "--noreload" not in development
    assert "runserver 127.0.0.1:8000" in development
