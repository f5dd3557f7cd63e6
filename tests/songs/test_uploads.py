"""Uploaded CSVs (the admin's import form, POST /api/imports/): a size limit
with a message naming it, the files of ended imports removed (or kept
IMPORT_UPLOAD_KEEP_DAYS days), and lines too long for Arrow's reader named
by their line (or as the header) instead of Arrow's "straddling object".
"""

import datetime as dt
import os
import re
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from songs import services
from songs.importing import CatalogReader, ImportRejected, file_inspect, oversized_record
from songs.models import ImportJob, Song
from songs.tasks import import_songs_task
from tests.conftest import DEMO_CSV, PASSWORD, flagship_rows, write_csv

pytestmark = pytest.mark.django_db

LIMIT = 4000  # bytes: 25 flagship rows are ~6 KB, 5 rows ~1.5 KB


@pytest.fixture
def media(settings, tmp_path):
    """Uploads of this test in a folder of its own (no task leaves the process here)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def small_limit(settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = LIMIT
    return LIMIT


def stored_files(media) -> list:
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


def csv_bytes(tmp_path, rows: int) -> bytes:
    return write_csv(tmp_path / f"rows{rows}.csv", flagship_rows(rows)).read_bytes()


# --- the size limit ------------------------------------------------------------------------


def test_api_refuses_an_upload_over_the_limit_naming_it(api, tmp_path, media, small_limit):
    api.force_authenticate(get_user_model().objects.create_user("ops", is_staff=True))
    path = write_csv(tmp_path / "big.csv", flagship_rows(25))
    assert path.stat().st_size > LIMIT
    with open(path, "rb") as fh:
        response = api.post("/api/imports/", {"file": fh, "format": "auto"}, format="multipart")
    assert response.status_code == 413, response.content
    detail = response.json()["detail"]
    assert detail.startswith("file: The file big.csv is larger than the 3.9 KB an upload may be")
    assert "IMPORT_UPLOAD_MAX_BYTES = 4,000 bytes" in detail and "manage.py import_songs" in detail
    assert not ImportJob.objects.exists() and stored_files(media) == []


def test_api_upload_within_the_limit_is_accepted(api, tmp_path, media, small_limit, settings):
    settings.IMPORT_UPLOAD_MAX_BYTES = len(csv_bytes(tmp_path, 5))  # exactly at the limit
    api.force_authenticate(get_user_model().objects.create_user("ops", is_staff=True))
    with open(tmp_path / "rows5.csv", "rb") as fh:
        response = api.post("/api/imports/", {"file": fh}, format="multipart")
    assert response.status_code == 202, response.content
    assert ImportJob.objects.filter(file_name="rows5.csv").exists()


def test_serializer_checks_the_size_too(settings):
    """Behind another upload handler (or none), the serializer still refuses it (400)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from songs.api import ImportUploadSerializer

    settings.IMPORT_UPLOAD_MAX_BYTES = 10
    serializer = ImportUploadSerializer(data={"file": SimpleUploadedFile("x.csv", b"a" * 11)})
    assert not serializer.is_valid()
    assert "larger than the 10 bytes an upload may be" in str(serializer.errors["file"][0])


def test_admin_form_refuses_an_upload_over_the_limit_with_csrf_on(tmp_path, media, small_limit):
    """The oversized file is dropped while it arrives, but the form's other
    fields (the CSRF token, the format) still do: the form says why."""
    get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.get(username="boss"))
    page = client.get("/admin/songs/importjob/add/").content.decode()
    assert "at most 3.9 KB" in page  # the help text states the limit
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    path = write_csv(tmp_path / "big.csv", flagship_rows(25))
    with open(path, "rb") as fh:
        response = client.post(
            "/admin/songs/importjob/add/", {"upload": fh, "import_format": "auto", "csrfmiddlewaretoken": token}
        )
    assert response.status_code == 200  # the form again, with the error
    html = response.content.decode()
    assert "The file big.csv is larger than the 3.9 KB an upload may be" in html
    assert "This field is required" not in html
    assert not ImportJob.objects.exists() and stored_files(media) == []


def test_upload_handler_stops_storing_past_the_limit(rf, settings):
    """The handler drops the file once it passes the limit, whatever the size
    the client announced, and notes its field on the request."""
    from django.core.files.uploadhandler import SkipFile

    from songs.uploads import UploadSizeLimitHandler, refused_uploads

    settings.IMPORT_UPLOAD_MAX_BYTES = 100
    request = rf.post("/api/imports/")
    handler = UploadSizeLimitHandler(request)
    handler.new_file("file", "x.csv", "text/csv", None)
    assert handler.receive_data_chunk(b"a" * 60, 0) == b"a" * 60
    with pytest.raises(SkipFile):
        handler.receive_data_chunk(b"a" * 60, 60)
    assert refused_uploads(request) == {"file": "x.csv"}
    other = UploadSizeLimitHandler(rf.post("/api/imports/"))
    with pytest.raises(SkipFile):  # announced as too large: refused before any byte
        other.new_file("file", "y.csv", "text/csv", 101)


# --- what happens to uploaded files ---------------------------------------------------------


def queued_job(name: str, data: bytes) -> ImportJob:
    return services.import_job_create(file_name=name, uploaded_file=ContentFile(data, name=name))


def test_files_of_finished_imports_are_removed(tmp_path, media):
    good = queued_job("good.csv", csv_bytes(tmp_path, 5))
    bad_rows = flagship_rows(5, valence="2.5")
    bad = queued_job("bad.csv", write_csv(tmp_path / "bad.csv", bad_rows).read_bytes())
    assert len(stored_files(media)) == 2
    assert import_songs_task.apply(args=[good.pk]).get() == "succeeded"
    assert import_songs_task.apply(args=[bad.pk]).get() == "failed"
    assert stored_files(media) == []
    for job in ImportJob.objects.all():
        assert job.file.name == ""  # the row forgets it; its counts and reasons stay
    assert ImportJob.objects.get(pk=bad.pk).rows_rejected == 5
    assert Song.objects.count() == 5


def test_a_rejected_file_is_removed_too(tmp_path, media):
    job = queued_job("binary.csv", b"\x00\x01\x02 not a csv")
    assert import_songs_task.apply(args=[job.pk]).get() == "failed"
    job.refresh_from_db()
    assert "binary data" in job.error and job.file.name == "" and stored_files(media) == []


def test_files_are_kept_for_the_configured_days(tmp_path, media, settings):
    settings.IMPORT_UPLOAD_KEEP_DAYS = 2
    job = queued_job("kept.csv", csv_bytes(tmp_path, 5))
    assert import_songs_task.apply(args=[job.pk]).get() == "succeeded"
    (path,) = stored_files(media)
    now = timezone.now()
    assert services.import_uploads_prune(now=now + dt.timedelta(days=1)) == 0 and path.exists()
    assert services.import_uploads_prune(now=now + dt.timedelta(days=2, minutes=1)) == 1
    assert not path.exists() and ImportJob.objects.get(pk=job.pk).file.name == ""


def test_queued_and_running_imports_keep_their_files(tmp_path, media):
    queued = queued_job("queued.csv", csv_bytes(tmp_path, 5))
    running = queued_job("running.csv", csv_bytes(tmp_path, 5))
    services.import_job_claim(job_id=running.pk)
    assert services.import_uploads_prune(now=timezone.now() + dt.timedelta(days=30)) == 0
    assert len(stored_files(media)) == 2
    assert {queued.pk, running.pk} == set(ImportJob.objects.exclude(file="").values_list("pk", flat=True))


def test_a_dead_imports_file_goes_with_it(tmp_path, media):
    """The sweeper fails an import whose worker died; its file is removed in the same sweep."""
    job = queued_job("dead.csv", csv_bytes(tmp_path, 5))
    services.import_job_claim(job_id=job.pk)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=10))
    assert services.import_jobs_fail_stale(older_than=60) == 1
    job.refresh_from_db()
    assert job.status == "failed" and job.file.name == "" and stored_files(media) == []


def test_uploads_no_job_owns_are_removed_once_old(tmp_path, media):
    folder = media / "imports" / "2026" / "01"
    folder.mkdir(parents=True)
    old, fresh = folder / "left-behind.csv", folder / "just-written.csv"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    an_hour_ago = time.time() - services.ORPHAN_UPLOAD_GRACE_SECONDS - 60
    os.utime(old, (an_hour_ago, an_hour_ago))
    owned = queued_job("owned.csv", b"z")  # queued: its file stays, whatever its age
    owned_path = media / owned.file.name
    os.utime(owned_path, (an_hour_ago, an_hour_ago))
    assert services.import_uploads_prune() == 1
    assert not old.exists() and fresh.exists() and owned_path.exists()


def test_a_job_row_that_cannot_be_saved_leaves_no_file(media, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise RuntimeError("database said no")

    monkeypatch.setattr(ImportJob, "save", refuse)
    with pytest.raises(RuntimeError):
        queued_job("orphan.csv", b"data")
    assert stored_files(media) == []


# --- lines too long for the reader -----------------------------------------------------------

BLOCK = 64 << 10  # the reader's block in these tests (4 MB in use): small files show the same errors


def read_all(path, block_bytes=BLOCK):
    reader = CatalogReader(path, file_inspect(path), block_bytes=block_bytes)
    return sum(len(batch) for batch in reader.batches())


def rejection(path, block_bytes=BLOCK) -> str:
    with pytest.raises(ImportRejected) as caught:
        read_all(path, block_bytes)
    message = str(caught.value)
    assert "straddl" not in message and "block size" not in message  # never Arrow's own words
    return message


def test_a_huge_field_names_its_line_and_column(tmp_path):
    rows = flagship_rows(30)
    rows[6]["genres"] = "['" + "synth pop', '" * 20_000 + "']"
    message = rejection(write_csv(tmp_path / "huge.csv", rows))
    assert message.startswith("Line 8 is ")  # header = line 1, the seventh row = line 8
    assert "column 21, genres, holds 260,006 bytes" in message  # the field as written: with its quotes
    assert "a line may be at most 65,536 bytes" in message and "nothing was imported" in message


def test_a_huge_field_with_crlf_line_ends_and_a_bom(tmp_path):
    rows = flagship_rows(30)
    rows[2]["name_song"] = "x" * 200_000  # Arrow takes a line up to two blocks long, sometimes
    path = write_csv(tmp_path / "crlf.csv", rows, newline="\r\n", bom=True)
    message = rejection(path)
    assert message.startswith("Line 4 is 200,1") and "column 2, name_song, holds 200,000 bytes" in message


def test_an_unclosed_quote_is_named(tmp_path):
    # No other double quote in the file (genres without commas are not quoted): the quote runs to the end.
    lines = write_csv(tmp_path / "ok.csv", flagship_rows(1000, genres="[]")).read_text().splitlines()
    lines[5] = lines[5].replace(",Synthetic Song 5,", ',"Synthetic Song 5,', 1)
    path = tmp_path / "unclosed.csv"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 2 * BLOCK
    message = rejection(path)
    assert message.startswith("Line 6 opens a quoted field in column 2, name_song, that is never closed")
    assert "Check the quotes on line 6" in message


def test_a_header_longer_than_a_block_is_named(tmp_path):
    header = [*flagship_rows(1)[0], *(f"extra_column_with_a_long_name_{i:05d}" for i in range(3000))]
    message = rejection(write_csv(tmp_path / "wide.csv", flagship_rows(3), header=header))
    assert message.startswith("The header (line 1) is ") and "with 3,023 columns" in message


def test_a_header_field_longer_than_the_csv_limit_is_named(tmp_path):
    header = [*flagship_rows(1)[0], "h" * 1_100_000]
    message = rejection(write_csv(tmp_path / "field.csv", flagship_rows(3), header=header), block_bytes=4 << 20)
    assert message == (
        "The header (line 1) has a column name longer than 1,000,000 characters: it is not a catalog export's "
        "header. Nothing was imported."
    )


def test_a_header_with_too_many_columns_is_refused(tmp_path):
    header = [*flagship_rows(1)[0], *(f"c{i}" for i in range(20_000))]
    message = rejection(write_csv(tmp_path / "cols.csv", flagship_rows(2), header=header))
    assert message == (
        "The header has 20,023 columns; a catalog has at most 10,000 (an export has a few dozen). Nothing was imported."
    )


def test_the_whole_import_reports_it_and_changes_nothing(tmp_path):
    """Through the service, with the reader's real 4 MB block: a 9 MB field."""
    seeded = services.songs_import_file(path=write_csv(tmp_path / "seed.csv", flagship_rows(5)))
    assert seeded.status == "succeeded"
    rows = flagship_rows(10, start=100)
    rows[3]["name_song"] = "y" * (9 << 20)  # over two of the reader's 4 MB blocks
    job = services.songs_import_file(path=write_csv(tmp_path / "nine-mb.csv", rows))
    assert job.status == "failed" and job.stage == "rejected"
    assert job.error == (
        "Line 5 is 9 MB long: column 2, name_song, holds 9 MB, and a line may be at most 4 MB. "
        "Shorten or remove that field; nothing was imported."
    )
    assert Song.objects.count() == 5


def test_ordinary_files_have_no_oversized_record():
    assert oversized_record(DEMO_CSV, 4 << 20) is None
    longest = max(len(line) for line in DEMO_CSV.read_bytes().split(b"\n"))
    found = oversized_record(DEMO_CSV, longest - 1)
    assert found is not None and found.size == longest and found.line >= 2


def test_prune_uploads_command_cleans_up_now(tmp_path, media):
    """Files an older version kept (ended jobs still holding their upload) go at once."""
    from io import StringIO

    from django.core.management import call_command

    ended = queued_job("old.csv", b"a")
    ImportJob.objects.filter(pk=ended.pk).update(status="succeeded", finished_at=timezone.now())
    waiting = queued_job("waiting.csv", b"b")
    out = StringIO()
    call_command("prune_uploads", stdout=out)
    assert out.getvalue().startswith("Removed 1 uploaded file(s) from ")
    assert [p.name for p in stored_files(media)] == [Path(waiting.file.name).name]
