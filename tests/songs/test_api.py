"""The catalog's REST API (songs/api.py) and its API tokens.

- /api/songs/: the list (search, filters; cursor pages) and a song's detail.
- /api/imports/: staff upload a CSV, the same job and task as the admin upload
  run it. In the embedded mode the task runs eagerly; with CELERY_BROKER_URL
  and a Postgres DATABASE_URL it runs in a real worker process (see conftest).
- create_api_token: the command that gives a client its token.
"""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError
from rest_framework.authtoken.models import Token

from songs.features import FEATURE_NAMES
from songs.models import ImportJob, Song
from tests.conftest import flagship_rows, token_command, wait_for, write_csv

# --- songs ----------------------------------------------------------------------------


def _walk(api, url, params=None, *, key="next"):
    """Every song of a cursor-paginated list, following its ``key`` links; (songs, pages)."""
    songs, pages = [], 0
    response = api.get(url, params or {})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}  # no count
        songs += body["results"]
        pages += 1
        if not body[key]:
            return songs, pages
        response = api.get(body[key])


@pytest.mark.django_db
def test_songs_list_search_filters_and_detail(api, trained_demo):
    body = api.get("/api/songs/", {"page_size": 5}).json()
    assert len(body["results"]) == 5 and body["previous"] is None and "cursor=" in body["next"]
    assert [s["id"] for s in body["results"]] == list(
        Song.objects.order_by("id").values_list("external_id", flat=True)[:5]
    )
    song = Song.objects.select_related("artist").order_by("id")[10]
    found = api.get("/api/songs/", {"search": song.name}).json()["results"]
    assert song.external_id in [s["id"] for s in found]
    energetic = api.get("/api/songs/", {"energy__gte": 0.9, "page_size": 500}).json()["results"]
    assert energetic and all(s["energy"] >= 0.9 for s in energetic)
    cluster = trained_demo.clusters.order_by("label").first()
    in_cluster, _ = _walk(api, "/api/songs/", {"cluster": cluster.pk, "page_size": 500})
    assert len(in_cluster) == cluster.size and {s["cluster"]["id"] for s in in_cluster} == {cluster.pk}
    detail = api.get(f"/api/songs/{song.external_id}/").json()
    assert detail["id"] == song.external_id and detail["artist"] == song.artist.name
    assert detail["cluster"]["id"] == song.cluster_id
    assert set(FEATURE_NAMES) <= set(detail)


@pytest.mark.django_db
def test_cursor_pages_walk_the_whole_list_both_ways_with_filters_kept(api, trained_demo):
    expected = list(Song.objects.filter(energy__gte=0.5).order_by("id").values_list("external_id", flat=True))
    assert 700 < len(expected) < 3000
    forward, pages = _walk(api, "/api/songs/", {"energy__gte": 0.5, "page_size": 100})
    assert [s["id"] for s in forward] == expected and pages == -(-len(expected) // 100)
    # From the last page back to the first, through `previous`.
    last = api.get("/api/songs/", {"energy__gte": 0.5, "page_size": 100}).json()
    while last["next"]:
        last = api.get(last["next"]).json()
    assert last["next"] is None and last["previous"]
    backward, _ = _walk(api, last["previous"], key="previous")
    pages_back = [s["id"] for s in backward]
    assert pages_back[:100] == expected[-len(last["results"]) - 100 : -len(last["results"])]
    assert sorted(pages_back) == sorted(expected[: -len(last["results"])])


@pytest.mark.django_db
def test_a_list_page_counts_nothing_and_reads_songs_in_two_queries(api, trained_demo):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = api.get("/api/songs/", {"page_size": 20}).json()
    with CaptureQueriesContext(connection) as queries:
        page = api.get(first["next"]).json()
    sql = [q["sql"].upper() for q in queries.captured_queries]
    assert len(page["results"]) == 20 and not any("COUNT(" in q or "OFFSET" in q for q in sql), sql
    assert len(sql) == 2, sql  # the page's ids (keyset), then its songs


@pytest.mark.django_db
@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "cD1hYmM=",  # p=abc
        "bz01JnA9MTA=",  # o=5&p=10: an offset
        "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # p beyond a 64-bit id
    ],
)
def test_a_cursor_not_handed_out_by_the_list_is_a_400(api, trained_demo, cursor):
    response = api.get("/api/songs/", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("cursor: not a cursor of this list")


@pytest.mark.django_db
def test_a_page_number_is_a_400_that_points_to_the_cursor(api, trained_demo):
    response = api.get("/api/songs/", {"page": 2})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("page: this list pages by cursor")


@pytest.mark.django_db
def test_a_single_song_read_builds_no_filter_set(api, trained_demo, monkeypatch, django_assert_num_queries):
    from songs import api as songs_api

    def refuse(*args, **kwargs):
        raise AssertionError("a filter set was built for a single song")

    monkeypatch.setattr(songs_api.SongFilter, "__init__", refuse)
    song = Song.objects.order_by("id")[3]
    with django_assert_num_queries(1):
        detail = api.get(f"/api/songs/{song.external_id}/")
    assert detail.status_code == 200 and detail.json()["id"] == song.external_id
    with pytest.raises(AssertionError, match="filter set was built"):  # the list does build one
        api.get("/api/songs/", {"page_size": 2})


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["99999999999999999999", "-1", "x"])
def test_absurd_cluster_filter_is_a_400(api, trained_demo, value):
    response = api.get("/api/songs/", {"cluster": value})
    assert response.status_code == 400 and "cluster" in response.json()["detail"]


# --- imports --------------------------------------------------------------------------


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("ops", is_staff=True)


@pytest.fixture
def cleanup_uploads():
    yield
    for job in ImportJob.objects.exclude(file=""):
        job.file.delete(save=False)


def finished(api, job_id):
    def done():
        body = api.get(f"/api/imports/{job_id}/").json()
        return body if body["status"] in ("succeeded", "failed") else None

    return wait_for(done)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_staff_upload_imports_the_file(api, staff, tmp_path, task_runner, cleanup_uploads):
    api.force_authenticate(staff)
    path = write_csv(tmp_path / "upload.csv", flagship_rows(25))
    with open(path, "rb") as fh:
        response = api.post("/api/imports/", {"file": fh, "format": "flagship"}, format="multipart")
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["file_name"] == "upload.csv" and accepted["created_by"] == "ops"
    assert accepted["status"] in ("queued", "running", "succeeded")
    body = finished(api, accepted["id"])
    assert body["status"] == "succeeded", body["error"]
    assert body["rows_created"] == 25 and body["progress"] == 100 and body["format"] == "flagship"
    assert Song.objects.count() == 25
    listed = api.get("/api/imports/").json()
    assert [j["id"] for j in listed["results"]] == [accepted["id"]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_rejected_rows_are_reported(api, staff, tmp_path, task_runner, cleanup_uploads):
    api.force_authenticate(staff)
    rows = flagship_rows(10)
    for row in rows[:4]:
        row["valence"] = "2.5"
    with open(write_csv(tmp_path / "bad.csv", rows), "rb") as fh:
        job_id = api.post("/api/imports/", {"file": fh}, format="multipart").json()["id"]
    body = finished(api, job_id)
    assert body["status"] == "failed" and "4 of 10 rows (40%) are invalid" in body["error"]
    assert body["rows_rejected"] == 4 and len(body["rejected_rows"]) == 4
    first = body["rejected_rows"][0]
    assert first["line"] == 2 and first["column"] == "valence" and "out of range" in first["reason"]
    assert Song.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_only_staff(api, tmp_path):
    path = write_csv(tmp_path / "x.csv", flagship_rows(2))
    with open(path, "rb") as fh:
        anonymous = api.post("/api/imports/", {"file": fh}, format="multipart")
    assert anonymous.status_code == 401 and "credentials" in anonymous.json()["detail"]
    api.force_authenticate(get_user_model().objects.create_user("listener"))
    with open(path, "rb") as fh:
        assert api.post("/api/imports/", {"file": fh}, format="multipart").status_code == 403
    assert api.get("/api/imports/").status_code == 403
    assert not ImportJob.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_bad_requests_name_the_field(api, staff, tmp_path):
    api.force_authenticate(staff)
    missing = api.post("/api/imports/", {"format": "auto"}, format="multipart")
    assert missing.status_code == 400 and missing.json()["detail"] == "file: No file was submitted."
    with open(write_csv(tmp_path / "x.csv", flagship_rows(2)), "rb") as fh:
        wrong = api.post("/api/imports/", {"file": fh, "format": "excel"}, format="multipart")
    assert (
        wrong.status_code == 400
        and wrong.json()["detail"] == 'format: "excel" is not a format; choose one of auto, flagship, spotify.'
    )
    as_json = api.post("/api/imports/", {"file": "x"}, format="json")
    assert (
        as_json.status_code == 415
        and as_json.json()["detail"] == 'Unsupported media type "application/json" in request.'
    )
    assert api.get("/api/imports/999999/").json() == {"detail": "No ImportJob matches the given query."}
    assert not ImportJob.objects.exists()


# --- API tokens -----------------------------------------------------------------------


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_reset_replaces_the_key(api_client_factory):
    key, _ = token_command("robot", "--create-user")
    new, notes = token_command("robot", "--reset")
    assert new != key and "no longer works" in notes
    assert api_client_factory(key).post("/api/playlists/", {"name": "x"}, format="json").status_code == 401
    assert api_client_factory(new).post("/api/playlists/", {"name": "x"}, format="json").status_code == 201


@pytest.mark.django_db
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
