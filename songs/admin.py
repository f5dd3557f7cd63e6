from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from .formats import FORMATS
from .models import Artist, ImportJob, Song
from .uploads import human_size, refused_uploads, upload_is_too_large, upload_too_large_message


@admin.register(Artist)
class ArtistAdmin(admin.ModelAdmin):
    list_display = ("name", "external_id", "followers", "popularity")
    search_fields = ("name", "external_id")
    show_full_result_count = False


@admin.register(Song)
class SongAdmin(admin.ModelAdmin):
    # No cluster column: clusters are the engine's labels of its active run, not the catalog's.
    list_display = ("name", "artist", "external_id", "release_year", "energy", "danceability", "tempo")
    list_select_related = ("artist",)
    search_fields = ("name", "external_id", "artist__name")
    raw_id_fields = ("artist",)
    show_full_result_count = False


class ImportUploadForm(forms.ModelForm):
    upload = forms.FileField(label="CSV file")
    import_format = forms.ChoiceField(
        choices=[("auto", "auto-detect")] + [(f, f) for f in FORMATS], initial="auto", label="Format"
    )

    # {field: file name} of the files refused for their size while they arrived (songs.uploads).
    refused: dict[str, str] = {}

    class Meta:
        model = ImportJob
        fields = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["upload"].help_text = (
            "An Amazon/Spotify export or another Spotify-style CSV export, at most "
            f"{human_size(settings.IMPORT_UPLOAD_MAX_BYTES)}. The file is removed once its import ends."
        )
        if "upload" in self.refused:
            self.fields["upload"].required = False  # clean_upload says why it is missing

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if "upload" in self.refused:
            raise forms.ValidationError(upload_too_large_message(self.refused["upload"]))
        if upload is not None and upload_is_too_large(upload.size):
            raise forms.ValidationError(upload_too_large_message(upload.name, upload.size))
        return upload


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "file_name",
        "status",
        "progress_bar",
        "format",
        "rows_read",
        "rows_created",
        "rows_updated",
        "rows_rejected",
        "created_at",
        "created_by",
    )
    list_filter = ("status", "format")
    readonly_fields = (
        "file_name",
        "sha256",
        "size_bytes",
        "format",
        "encoding",
        "status",
        "stage",
        "progress_bar",
        "rows_total_estimate",
        "rows_read",
        "rows_created",
        "rows_updated",
        "rows_unchanged",
        "rows_duplicate",
        "rows_rejected",
        "rejected_table",
        "error",
        "timings",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    exclude = ("file", "rejected_rows")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            refused = {}
            if request.method == "POST":
                request.FILES  # noqa: B018 (parses the upload, which notes a refused file)
                refused = dict(refused_uploads(request))
            kwargs["form"] = type("ImportUploadForm", (ImportUploadForm,), {"refused": refused})
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("upload", "import_format")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        from . import services

        upload = form.cleaned_data["upload"]
        fmt = form.cleaned_data["import_format"]
        job = services.import_job_submit(file_name=upload.name, fmt=fmt, user=request.user, uploaded_file=upload)
        obj.pk = job.pk
        obj.refresh_from_db()
        messages.info(request, f"Import #{job.pk} of {upload.name} is queued; this page shows its progress.")

    @admin.display(description="Progress")
    def progress_bar(self, obj):
        return format_html(
            '<progress max="100" value="{}" aria-label="import progress">{}%</progress> {}% {}',
            obj.progress_percent,
            obj.progress_percent,
            obj.progress_percent,
            obj.stage,
        )

    @admin.display(description="Rejected rows (first ones)")
    def rejected_table(self, obj):
        if not obj.rejected_rows:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r["line"], r["column"], r.get("value", ""), r["reason"]) for r in obj.rejected_rows),
        )
        return format_html(
            "<table><thead><tr><th>Line</th><th>Column</th><th>Value</th><th>Reason</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )
