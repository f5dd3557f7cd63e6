"""Sign-in lockout (django-axes) on the site's and the admin's login pages:
per account and per client address, with a clear message."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PASSWORD = "right-pw-123456"
PAGES = {"site": "/accounts/login/", "admin": "/admin/login/"}


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=True)


def sign_in(client, page, username, password, ip="10.9.0.1", **extra):
    return client.post(PAGES[page], {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


@pytest.mark.parametrize("page", ["site", "admin"])
def test_the_right_password_is_refused_after_repeated_failures(client, user, page):
    for _ in range(2):
        assert sign_in(client, page, "alice", "wrong").status_code == 200  # the form again, with its error
    locked = sign_in(client, page, "alice", "wrong")
    assert locked.status_code == 429
    response = sign_in(client, page, "alice", PASSWORD)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Sign-in locked" in html and "Too many failed sign-ins (3)" in html and "15 minutes" in html
    assert "_auth_user_id" not in client.session


def test_the_account_stays_locked_from_another_address(client, user):
    for _ in range(3):
        sign_in(client, "site", "alice", "wrong", ip="10.9.0.1")
    assert sign_in(client, "site", "alice", PASSWORD, ip="10.9.0.2").status_code == 429


def test_an_address_trying_many_accounts_is_locked(client, user):
    for name in ("bob", "carol", "dave"):
        sign_in(client, "site", name, "wrong", ip="10.9.0.7")
    assert sign_in(client, "site", "alice", PASSWORD, ip="10.9.0.7").status_code == 429
    # A forged X-Forwarded-For is no way out (NUM_PROXIES is 0) ...
    forged = sign_in(client, "site", "alice", PASSWORD, ip="10.9.0.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert forged.status_code == 429
    # ... while another address signs in to the same account.
    assert sign_in(client, "site", "alice", PASSWORD, ip="10.9.0.8").status_code == 302


def test_fewer_failures_than_the_limit_and_a_success_start_over(client, user):
    for _ in range(2):
        sign_in(client, "site", "alice", "wrong")
    assert sign_in(client, "site", "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        sign_in(client, "site", "alice", "wrong")
    assert sign_in(client, "site", "alice", PASSWORD).status_code == 302


def test_axes_reset_lifts_the_lock(client, user):
    for _ in range(3):
        sign_in(client, "site", "alice", "wrong")
    assert sign_in(client, "site", "alice", PASSWORD).status_code == 429
    call_command("axes_reset")
    assert sign_in(client, "site", "alice", PASSWORD).status_code == 302


def test_the_lockout_settings_come_from_the_environment(tmp_path):
    from tests.musiccluster.environment import settings_under

    def lockout(env):
        s = settings_under(env, tmp_path)
        return [s["AXES_ENABLED"], s["AXES_FAILURE_LIMIT"], s["AXES_COOLOFF_TIME"].total_seconds()]

    assert lockout({"AXES_FAILURE_LIMIT": "5", "AXES_COOLOFF_MINUTES": "30", "AXES_ENABLED": "0"}) == [False, 5, 1800.0]
    assert lockout({}) == [True, 10, 900.0]
