"""The engine's REST API: clusters, runs, predict, and the OpenAPI schema and its docs."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from clustering.models import Cluster, TrainingRun
from songs.features import FEATURE_NAMES
from songs.models import Song
from tests.conftest import cluster_members

pytestmark = pytest.mark.django_db


VECTOR = {
    "danceability": 0.8,
    "energy": 0.9,
    "loudness": -5.0,
    "speechiness": 0.05,
    "acousticness": 0.05,
    "instrumentalness": 0.0,
    "liveness": 0.1,
    "valence": 0.8,
    "tempo": 124.0,
    "duration_ms": 210000,
}


def test_unknown_ids_are_404_json(api, trained_demo):
    for url in ("/api/songs/nope/", "/api/clusters/999999/", "/api/runs/999999/"):
        response = api.get(url)
        assert response.status_code == 404 and "detail" in response.json()


def test_clusters_of_the_active_run_and_their_songs(api, trained_demo):
    clusters = api.get("/api/clusters/").json()["results"]
    assert len(clusters) == 4 and all(c["run"] == trained_demo.pk for c in clusters)
    first = clusters[0]
    detail = api.get(f"/api/clusters/{first['id']}/").json()
    assert detail["profile"]["size"] == detail["size"] and detail["name"]
    url, seen = f"/api/clusters/{first['id']}/songs/", []
    while url:
        songs = api.get(url, {"page_size": 200} if not seen else {}).json()
        assert set(songs) == {"next", "previous", "results"}
        seen += [s["id"] for s in songs["results"]]
        url = songs["next"]
    assert len(seen) == len(set(seen)) == first["size"]
    members = cluster_members(Cluster.objects.get(pk=first["id"]))
    assert seen == list(members.order_by("id").values_list("external_id", flat=True))


def test_runs_read_open_write_staff_only(api, trained_demo):
    assert api.get("/api/runs/").json()["results"][0]["id"] == trained_demo.pk
    assert api.post("/api/runs/", {"k": 3}, format="json").status_code in (401, 403)
    staff = get_user_model().objects.create_user("staff", password="pw-123456789", is_staff=True)
    api.force_authenticate(staff)
    bad = api.post("/api/runs/", {"k": "zero"}, format="json")
    assert bad.status_code == 400 and "k must be a whole number" in bad.json()["detail"]
    ok = api.post("/api/runs/", {"k": 3}, format="json")
    assert ok.status_code == 202 and ok.json()["status"] == "queued"
    assert TrainingRun.objects.count() == 2


def test_predict_one_and_many(api, trained_demo):
    one = api.post("/api/predict/", VECTOR, format="json")
    assert one.status_code == 200, one.content
    body = one.json()
    assert body["cluster"]["id"] in set(trained_demo.clusters.values_list("id", flat=True))
    assert len(body["distances"]) == 4 and {"x", "y"} == set(body["map"])
    many = api.post("/api/predict/", [VECTOR, dict(VECTOR, energy=0.1, acousticness=0.9)], format="json").json()
    assert len(many["results"]) == 2


@pytest.mark.parametrize(
    "payload, status, message",
    [
        ({k: v for k, v in VECTOR.items() if k != "tempo"}, 400, "tempo"),
        (dict(VECTOR, energy="loud"), 400, "energy"),
        (dict(VECTOR, valence=1.5), 400, "valence"),
        (dict(VECTOR, duration_ms=-1), 400, "duration_ms"),
        ([], 400, "non-empty list"),
        ("energy", 400, "JSON object"),
        ([VECTOR] * 10_001, 400, "At most 10,000"),
    ],
)
def test_predict_rejects_bad_input_with_clear_messages(api, trained_demo, payload, status, message):
    response = api.post("/api/predict/", payload, format="json")
    assert response.status_code == status
    assert message in response.content.decode()


def test_predict_rejects_nan(api, trained_demo):
    body = '{"danceability": NaN, "energy": 0.5}'
    response = api.post("/api/predict/", body, content_type="application/json")
    assert response.status_code == 400


def test_predict_without_a_model_is_503(api):
    response = api.post("/api/predict/", VECTOR, format="json")
    assert response.status_code == 503 and "no model is active" in response.json()["detail"]


def test_schema_and_offline_docs(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/predict/" in schema.content
    docs = api.get("/api/docs/").content.decode()
    assert "swagger" in docs.lower() and "cdn" not in docs.lower() and "jsdelivr" not in docs.lower()


def test_schema_is_valid_and_documents_playlists_imports_and_tokens():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    paths = schema["paths"]
    for path in (
        "/api/playlists/",
        "/api/playlists/{id}/",
        "/api/playlists/{id}/export/",
        "/api/playlists/shared/{share_id}/",
        "/api/playlists/shared/{share_id}/export/",
        "/api/imports/",
        "/api/imports/{id}/",
    ):
        assert path in paths, path
    fmt = next(p for p in paths["/api/playlists/{id}/export/"]["get"]["parameters"] if p["name"] == "fmt")
    assert fmt["required"] and fmt["schema"]["enum"] == ["csv", "json", "m3u", "xspf"] and fmt["description"]
    upload = paths["/api/imports/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ([VECTOR, dict(VECTOR, energy=True)], "[1].energy"),
        ([VECTOR, VECTOR, {k: v for k, v in VECTOR.items() if k != "loudness"}], "[2].loudness"),
        ([VECTOR, "x"], "[1]"),
        ([dict(VECTOR, tempo=301.0)] + [VECTOR] * 3, "[0].tempo"),
        (dict(VECTOR, duration_ms=0), "duration_ms"),
    ],
)
def test_predict_errors_name_the_item_and_field(api, trained_demo, payload, field):
    response = api.post("/api/predict/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(field)


def test_predict_batch_of_10000_matches_one_by_one(api, trained_demo):
    rng = np.random.default_rng(3)
    batch = [dict(VECTOR, energy=float(e), acousticness=float(a)) for e, a in rng.uniform(0, 1, (10_000, 2))]
    body = api.post("/api/predict/", batch, format="json").json()["results"]
    assert len(body) == 10_000
    for i in (0, 4321, 9999):
        one = api.post("/api/predict/", batch[i], format="json").json()
        assert one["cluster"] == body[i]["cluster"] and one["map"] == pytest.approx(body[i]["map"], rel=1e-9)


def test_predict_nearest_songs_on_request(api, trained_demo):
    song = Song.objects.order_by("id")[42]
    vector = {f: getattr(song, f) for f in FEATURE_NAMES}
    body = api.post("/api/predict/?nearest=5", vector, format="json").json()
    assert len(body["nearest"]) == 5 and body["nearest"][0]["distance"] <= body["nearest"][-1]["distance"]
    assert all({"id", "name", "artist", "distance", "similarity"} <= set(n) for n in body["nearest"])
    assert "nearest" not in api.post("/api/predict/", vector, format="json").json()
    for bad in ("-1", "21", "many"):
        response = api.post(f"/api/predict/?nearest={bad}", vector, format="json")
        assert response.status_code == 400 and "nearest" in response.json()["detail"]
    too_many = api.post("/api/predict/?nearest=3", [vector] * 1001, format="json")
    assert too_many.status_code == 400 and "1,000" in too_many.json()["detail"]


def test_anonymous_reads_are_throttled_per_ip(api, trained_demo, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import AnonRateThrottle

    # The rate is read when the throttle class is defined; patch it for this test only.
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/minute"})
    cache.clear()
    try:
        codes = [api.get("/api/clusters/", REMOTE_ADDR="10.0.0.1").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert "throttled" in api.get("/api/clusters/", REMOTE_ADDR="10.0.0.1").json()["detail"].lower()
        assert api.get("/api/clusters/", REMOTE_ADDR="10.0.0.2").status_code == 200  # another client
    finally:
        cache.clear()


def test_odd_numbers_in_parameters_are_400s(api, trained_demo):
    assert api.get("/api/clusters/", {"run": "²"}).status_code == 400
    assert api.get("/api/clusters/", {"run": "9" * 30}).status_code == 400
    assert api.post("/api/predict/?nearest=²", VECTOR, format="json").status_code == 400
    body = (
        '{"danceability": 0.5, "energy": 0.5, "loudness": -5, "speechiness": 0.1, "acousticness": 0.1, '
        '"instrumentalness": 0, "liveness": 0.1, "valence": 0.5, "tempo": 120, "duration_ms": 1' + "0" * 400 + "}"
    )
    response = api.post("/api/predict/", body, content_type="application/json")
    assert response.status_code == 400 and "too large" in response.json()["detail"]
