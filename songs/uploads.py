"""The size limit of uploaded CSVs (the admin's import form, POST /api/imports/).

`UploadSizeLimitHandler` is the first of settings.FILE_UPLOAD_HANDLERS: it
counts the bytes of each uploaded file as they arrive and, past
IMPORT_UPLOAD_MAX_BYTES, drops the file (the handlers after it never store
the rest; what they had is discarded with it) and notes its field on the
request (`refused_uploads`). The other form fields (the CSRF token, the
format) still arrive, so the admin form and the API answer with
`upload_too_large_message` instead of "no file was submitted".
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile


def human_size(n: int) -> str:
    """1536 -> '1.5 KB', 536870912 -> '512 MB' (binary multiples)."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(size):,} bytes"
            return f"{size:,.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    raise AssertionError("unreachable")


def upload_too_large_message(file_name: str, size: int | None = None) -> str:
    """The one message for an upload over the limit, naming the limit and the way around it."""
    limit = settings.IMPORT_UPLOAD_MAX_BYTES
    what = f"{file_name} ({human_size(size)})" if size is not None else file_name
    return (
        f"The file {what} is larger than the {human_size(limit)} an upload may be "
        f"(IMPORT_UPLOAD_MAX_BYTES = {limit:,} bytes); nothing of it was stored. Import a larger file on the "
        "server with `manage.py import_songs PATH`, or raise the limit."
    )


def upload_is_too_large(size: int) -> bool:
    return size > settings.IMPORT_UPLOAD_MAX_BYTES


def refused_uploads(request) -> dict[str, str]:
    """{form field: file name} of the files of this request refused for their size."""
    return getattr(request, "refused_uploads", {})


class UploadSizeLimitHandler(FileUploadHandler):
    """Refuses an uploaded file once it grows past IMPORT_UPLOAD_MAX_BYTES."""

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.received = 0
        if content_length is not None and upload_is_too_large(content_length):
            self._refuse()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if upload_is_too_large(self.received):
            self._refuse()
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler (memory or temporary file) makes the file

    def _refuse(self):
        if self.request is not None:
            if not hasattr(self.request, "refused_uploads"):
                self.request.refused_uploads = {}
            self.request.refused_uploads[self.field_name] = self.file_name
        raise SkipFile(f"{self.file_name} is larger than IMPORT_UPLOAD_MAX_BYTES")
