"""Abuse limits of the API: client IPs through trusted proxies only, user and
token rates, scoped rates on the expensive endpoints, the work one predict
may ask for, and the request body size."""

import os
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.musiccluster.environment import PRODUCTION, deploy_check_ids, settings_under

pytestmark = pytest.mark.django_db

DEMO = django_settings.BASE_DIR / "fixtures" / "demo_catalog.csv"
VECTOR = {"danceability": 0.8, "energy": 0.9, "loudness": -5.0, "speechiness": 0.05, "acousticness": 0.05,
          "instrumentalness": 0.0, "liveness": 0.1, "valence": 0.8, "tempo": 124.0, "duration_ms": 210000}  # fmt: skip


@pytest.fixture
def rates(monkeypatch):
    """Set throttle rates for one test (DRF reads them when the classes are defined)."""

    def set_rates(**changes):
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **changes})

    return set_rates


@pytest.fixture
def api():
    return APIClient()


def codes(send, n):
    return [send().status_code for _ in range(n)]


def test_a_forged_x_forwarded_for_gets_no_fresh_budget(api, rates):
    rates(anon="3/minute")
    sent = [
        api.get("/api/clusters/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(5)
    ]
    assert sent == [200, 200, 200, 429, 429]
    assert api.get("/api/clusters/", REMOTE_ADDR="10.0.0.10").status_code == 200  # another client


def test_behind_one_trusted_proxy_the_last_forwarded_address_is_the_client(api, rates, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    rates(anon="2/minute")

    def send(forwarded):
        return api.get("/api/clusters/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded).status_code

    # The client may put anything in front; the proxy appends the address it saw.
    assert [send("1.1.1.1, 198.51.100.7"), send("2.2.2.2, 198.51.100.7"), send("198.51.100.7")] == [200, 200, 429]
    assert send("198.51.100.8") == 200  # another client behind the same proxy


def test_a_token_user_is_throttled_at_the_user_rate(api, rates):
    rates(user="3/minute")
    user = get_user_model().objects.create_user("script")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    sent = [api.get("/api/clusters/", REMOTE_ADDR=f"10.1.0.{i}").status_code for i in range(4)]
    assert sent == [200, 200, 200, 429]  # a new address does not help: the budget is the user's
    other = get_user_model().objects.create_user("other")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other).key}")
    assert api.get("/api/clusters/").status_code == 200


def test_predict_with_nearest_has_its_own_rate(api, rates, trained_demo):
    rates(predict_nearest="2/minute")
    nearest = codes(lambda: api.post("/api/predict/?nearest=3", VECTOR, format="json"), 3)
    assert nearest == [200, 200, 429]
    response = api.post("/api/predict/?nearest=3", VECTOR, format="json")
    assert "throttled" in response.json()["detail"].lower() and response.has_header("Retry-After")
    # A plain prediction is cheap: not counted against that rate.
    assert codes(lambda: api.post("/api/predict/", VECTOR, format="json"), 3) == [200, 200, 200]


@pytest.mark.parametrize(
    "scope, url",
    [
        ("recommendations", "/api/recommendations/?seed_genres=rock"),
        ("path", "/api/path/?from=a&to=b"),
        ("radio", "/api/songs/nope/radio/"),
    ],
)
def test_the_expensive_reads_have_their_own_rates(api, rates, scope, url):
    rates(**{scope: "2/minute"})
    sent = codes(lambda: api.get(url), 3)
    assert sent[:2] != [429, 429] and sent[2] == 429, sent
    assert api.get("/api/clusters/").status_code == 200  # other endpoints keep their budget


def test_one_predict_asks_for_a_bounded_number_of_neighbour_lookups(api, settings):
    settings.PREDICT_MAX_NEIGHBOUR_LOOKUPS = 50
    response = api.post("/api/predict/?nearest=6", [VECTOR] * 10, format="json")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "10 vectors × nearest=6 is 60 neighbour lookups" in detail and "at most 50 per request" in detail
    # Within the cap the request goes on (503 here: no model is active).
    assert api.post("/api/predict/?nearest=5", [VECTOR] * 10, format="json").status_code == 503


def test_a_too_large_body_is_a_413_in_json(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = api.post("/api/predict/", [VECTOR] * 20, format="json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "too large" in response.json()["detail"]


def test_the_limits_come_from_the_environment(tmp_path):
    env = {
        "NUM_PROXIES": "2",
        "API_ANON_RATE": "10/minute",
        "API_USER_RATE": "20/minute",
        "API_PREDICT_NEAREST_RATE": "3/minute",
        "API_RECOMMENDATIONS_RATE": "4/minute",
        "API_PATH_RATE": "5/minute",
        "API_RADIO_RATE": "6/minute",
        "DATA_UPLOAD_MAX_MEMORY_SIZE": "1048576",
        "PREDICT_MAX_NEIGHBOUR_LOOKUPS": "5000",
        "CACHE_URL": "redis://127.0.0.1:6379/3",
    }
    s = settings_under(env, tmp_path)
    assert s["REST_FRAMEWORK"]["NUM_PROXIES"] == 2
    assert s["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 1048576 and s["PREDICT_MAX_NEIGHBOUR_LOOKUPS"] == 5000
    assert s["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"] == {
        "anon": "10/minute", "user": "20/minute", "predict_nearest": "3/minute",
        "recommendations": "4/minute", "path": "5/minute", "radio": "6/minute",
    }  # fmt: skip
    cache = s["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:6379/3"
    defaults = settings_under({}, tmp_path)
    assert defaults["REST_FRAMEWORK"]["NUM_PROXIES"] == 0
    # The embedded default: a folder under VAR_DIR that every process of the machine shares.
    assert defaults["CACHES"]["default"]["BACKEND"].endswith("FileBasedCache")
    assert defaults["CACHES"]["default"]["LOCATION"] == str(tmp_path / "cache")
    # ...and the throttles' histories in files beside it; with Redis they stay in the cache.
    assert defaults["THROTTLE_HISTORY_DIR"] == tmp_path / "throttle" and s["THROTTLE_HISTORY_DIR"] is None
    assert defaults["PREDICT_MAX_NEIGHBOUR_LOOKUPS"] == 20_000
    assert defaults["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 10 * 1024 * 1024


def test_check_deploy_warns_about_a_per_process_cache(tmp_path):
    per_process = {**PRODUCTION, "CACHE_URL": "locmem://"}
    assert "musiccluster.W001" in deploy_check_ids(per_process, tmp_path)
    # Without CACHE_URL the folder cache is shared on one machine only: said, beside Postgres.
    without = {k: v for k, v in PRODUCTION.items() if k != "CACHE_URL"}
    ids = deploy_check_ids(without, tmp_path)
    assert "musiccluster.W002" in ids and "musiccluster.W001" not in ids
    assert not {"musiccluster.W001", "musiccluster.W002"} & set(deploy_check_ids(PRODUCTION, tmp_path))


def test_the_embedded_default_cache_is_shared_by_separate_processes(tmp_path):
    """Two web processes of the embedded mode (no CACHE_URL) count one client together:
    a throttle's history written by one process is read by another."""
    import subprocess
    import sys

    from tests.musiccluster.environment import environment_under

    env = environment_under({"DEBUG": "0", "SECRET_KEY": "x" * 50}, tmp_path)
    env.pop("CACHE_URL", None)

    def process(code: str) -> str:  # a fresh interpreter with the project's settings (no app loading needed)
        done = subprocess.run(
            [sys.executable, "-c", f"from django.core.cache import cache; {code}"],
            cwd=django_settings.BASE_DIR, env={**env, "DJANGO_SETTINGS_MODULE": "musiccluster.settings"},
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    process("cache.set('throttle_anon_203.0.113.9', [1.0, 2.0, 3.0], 60)")
    assert process("print(cache.get('throttle_anon_203.0.113.9'))") == "[1.0, 2.0, 3.0]"
    assert (tmp_path / "cache").is_dir()


# --- histories in files: the embedded default (musiccluster.throttling) ------------------------


def test_a_file_history_is_a_sliding_window_in_drf_order(tmp_path):
    from musiccluster.throttling import FileHistories

    histories = FileHistories(tmp_path)
    takes = [histories.take("k", now=t, num_requests=3, duration=10.0) for t in (0.0, 1.0, 2.0, 3.0)]
    assert [allowed for allowed, _ in takes] == [True, True, True, False]
    assert takes[3][1] == [2.0, 1.0, 0.0]  # newest first, as DRF's wait() reads it
    # The request of t=0 leaves the window at t=10: one more fits, and no refused one was counted.
    assert histories.take("k", now=10.5, num_requests=3, duration=10.0) == (True, [2.0, 1.0])
    assert histories.take("k", now=10.6, num_requests=3, duration=10.0)[0] is False
    assert histories.take("other", now=10.6, num_requests=3, duration=10.0) == (True, [])


def test_file_histories_count_every_request_of_concurrent_processes(tmp_path):
    """Four processes take from one client's budget at once: exactly the
    rate's number are let through, none more (a cache's get-then-set lets two
    processes that read the same history both write their own)."""
    import subprocess
    import sys

    code = (
        "import sys, time; from musiccluster.throttling import FileHistories; h = FileHistories(sys.argv[1]); "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
        "print(sum(h.take('client', now=time.time(), num_requests=150, duration=3600)[0] for _ in range(100)))"
    )
    start = f"{__import__('time').time() + 2.0}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "musiccluster.settings"}
    args = [sys.executable, "-c", f"import django; django.setup(); {code}", str(tmp_path), start]
    procs = [
        subprocess.Popen(args, cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    allowed = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert sum(allowed) == 150, allowed


def test_expired_histories_are_swept_and_live_ones_kept(tmp_path):
    from musiccluster.throttling import FileHistories

    histories = FileHistories(tmp_path)
    histories.take("gone", now=time.time() - 120, num_requests=5, duration=60.0)
    histories.take("here", now=time.time(), num_requests=5, duration=60.0)
    assert histories.sweep() == 1
    assert not histories.path("gone").exists() and histories.path("here").exists()
    # A swept client starts again with its whole budget.
    assert histories.take("gone", now=time.time(), num_requests=5, duration=60.0) == (True, [])


def test_the_api_counts_in_file_histories_when_they_are_set(api, rates, settings, tmp_path):
    settings.THROTTLE_HISTORY_DIR = tmp_path / "throttle"
    rates(anon="3/minute", user="1/minute")
    sent = [api.get("/api/clusters/", REMOTE_ADDR="10.0.0.7").status_code for _ in range(4)]
    assert sent == [200, 200, 200, 429]  # anonymous: the anonymous rate, not the (lower) user rate
    refused = api.get("/api/clusters/", REMOTE_ADDR="10.0.0.7")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert len(list((tmp_path / "throttle").iterdir())) == 1  # one history per client and rate
    user = get_user_model().objects.create_user("files")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert [api.get("/api/clusters/", REMOTE_ADDR="10.0.0.7").status_code for _ in range(2)] == [200, 429]
