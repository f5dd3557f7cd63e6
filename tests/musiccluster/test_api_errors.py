"""How the API answers a request it refuses: token and session authentication
(401 as JSON, CSRF on session writes), the error shape of musiccluster/api_errors.py
(detail and errors), unknown addresses and oversized forms."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from clustering.models import Playlist
from musiccluster.api_errors import error_detail
from tests.conftest import token_command

pytestmark = pytest.mark.django_db


# --- authentication -------------------------------------------------------------------


def test_token_auth_on_a_write_without_csrf(api_client_factory):
    key, _ = token_command("writer", "--create-user")
    client = api_client_factory(key, enforce_csrf_checks=True)
    response = client.post("/api/playlists/", {"name": "By token", "songs": []}, format="json")
    assert response.status_code == 201, response.content
    assert Playlist.objects.get().owner.username == "writer"


def test_anonymous_and_bad_token_writes_are_401_json(api_client_factory):
    anonymous = api_client_factory().post("/api/playlists/", {"name": "x"}, format="json")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    bad = api_client_factory("0" * 40).post("/api/playlists/", {"name": "x"}, format="json")
    assert bad.status_code == 401 and bad.json() == {"detail": "Invalid token."}
    assert not Playlist.objects.exists()


def test_session_writes_still_need_csrf():
    user = get_user_model().objects.create_user("browser")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/playlists/", {"name": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


# --- the error shape ------------------------------------------------------------------


def test_error_detail_names_fields_and_items():
    assert error_detail({"limit": ["Ensure this value is less than or equal to 100."]}) == (
        "limit: Ensure this value is less than or equal to 100."
    )
    assert error_detail({"name": ["Required."], "non_field_errors": ["Pick one."]}) == "name: Required.; Pick one."
    # A list payload (many=True) and a ListField child.
    assert error_detail([{}, {"energy": ["A valid number is required."]}]) == "[1].energy: A valid number is required."
    assert error_detail({"songs": {3: ["Too long."]}}) == "songs[3]: Too long."
    assert error_detail(["Plain."]) == "Plain."
    many = error_detail({f"f{i}": ["Bad."] for i in range(25)})
    assert many.count("Bad.") == 10 and many.endswith("and 15 more errors")


def test_validation_errors_carry_detail_and_errors():
    user = get_user_model().objects.create_user("someone")
    client = APIClient()
    client.force_authenticate(user)
    body = client.post("/api/playlists/", {"name": "", "songs": ["a", 3, None]}, format="json").json()
    assert set(body) == {"detail", "errors"}
    assert body["detail"] == "name: This field may not be blank.; songs[2]: This field may not be null."
    assert body["errors"]["songs"] == {"2": ["This field may not be null."]}


def test_unhandled_errors_are_json_500(monkeypatch, settings):
    settings.DEBUG = False
    from clustering import playlists

    def boom(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(playlists, "playlists_visible", boom)
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/playlists/")
    assert response.status_code == 500 and response.json() == {"detail": "Internal server error."}
    with pytest.raises(RuntimeError, match="disk on fire"):  # and test clients still see the exception
        APIClient().get("/api/playlists/")


def test_unknown_api_addresses_are_json_404(api):
    for url in ("/api/nope/", "/api/playlists/abc/", "/api/songs/x/y/z/"):
        response = api.get(url)
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json"), url
        assert "/api/docs/" in response.json()["detail"]
    assert not api.get("/definitely-not-a-page/")["Content-Type"].startswith("application/json")


def test_too_many_form_fields_is_a_400_not_a_500(api):
    body = "&".join(f"f{i}=1" for i in range(1500))
    response = api.post("/api/predict/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "fields" in response.json()["detail"].lower()
