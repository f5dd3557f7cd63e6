"""API tokens (create_api_token, token auth on writes) and the API's error shape."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clustering.models import Playlist
from musiccluster.api_errors import error_detail

pytestmark = pytest.mark.django_db


def token_command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip().splitlines()[-1], err.getvalue()


def test_create_api_token_for_a_new_user():
    with pytest.raises(CommandError, match="No user named 'robot'; pass --create-user"):
        token_command("robot")
    assert not get_user_model().objects.filter(username="robot").exists()
    key, notes = token_command("robot", "--create-user", "--staff")
    user = get_user_model().objects.get(username="robot")
    assert key == Token.objects.get(user=user).key and len(key) == 40
    assert user.is_staff and not user.has_usable_password() and "Created user 'robot'" in notes
    again, notes = token_command("robot")  # the same key until --reset
    assert again == key and "--reset" in notes


def test_reset_replaces_the_key(api_client_factory):
    key, _ = token_command("robot", "--create-user")
    new, notes = token_command("robot", "--reset")
    assert new != key and "no longer works" in notes
    assert api_client_factory(key).post("/api/playlists/", {"name": "x"}, format="json").status_code == 401
    assert api_client_factory(new).post("/api/playlists/", {"name": "x"}, format="json").status_code == 201


def test_staff_flag_on_an_existing_user_and_bad_names():
    get_user_model().objects.create_user("dana")
    token_command("dana", "--staff")
    assert get_user_model().objects.get(username="dana").is_staff
    with pytest.raises(CommandError, match="not a valid username"):
        token_command("no spaces please", "--create-user")
    get_user_model().objects.create_user("gone", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        token_command("gone")
    assert not Token.objects.filter(user__username="gone").exists()


@pytest.fixture
def api_client_factory():
    def make(key=None, **kwargs):
        client = APIClient(**kwargs)
        if key:
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


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


# --- the error shape ----------------------------------------------------------


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


def test_schema_is_valid_and_documents_the_new_endpoints():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    paths = schema["paths"]
    for path in ("/api/playlists/", "/api/playlists/{id}/", "/api/playlists/{id}/export/",
                 "/api/playlists/shared/{share_id}/", "/api/playlists/shared/{share_id}/export/",
                 "/api/imports/", "/api/imports/{id}/"):
        assert path in paths, path
    fmt = next(p for p in paths["/api/playlists/{id}/export/"]["get"]["parameters"] if p["name"] == "fmt")
    assert fmt["required"] and fmt["schema"]["enum"] == ["csv", "json", "m3u", "xspf"] and fmt["description"]
    upload = paths["/api/imports/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]
