from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from songs.features import FEATURE_NAMES

from . import services
from .ml import ALGORITHMS, SCALERS
from .models import Cluster, TrainingRun


class RetrainForm(forms.Form):
    algorithm = forms.ChoiceField(choices=[(a, a) for a in ALGORITHMS], initial="kmeans")
    k = forms.CharField(initial="auto", help_text="A number of clusters (2–100), or 'auto' to pick it by silhouette.")
    scan_k_min = forms.IntegerField(initial=2, min_value=2, max_value=50, label="k scan from")
    scan_k_max = forms.IntegerField(initial=12, min_value=2, max_value=50, label="k scan to")
    scaler = forms.ChoiceField(choices=[(s, s) for s in SCALERS], initial="standard")
    features = forms.MultipleChoiceField(
        choices=[(f, f) for f in FEATURE_NAMES], initial=list(FEATURE_NAMES), widget=forms.CheckboxSelectMultiple
    )
    scan_sample_size = forms.IntegerField(initial=10_000, min_value=100, max_value=1_000_000, label="Sample size for the scan")
    activate = forms.BooleanField(initial=True, required=False, help_text="Make the new model active when it succeeds.")

    def clean_k(self):
        value = self.cleaned_data["k"].strip().lower()
        if value == "auto":
            return value
        if not value.isdigit() or not 2 <= int(value) <= 100:
            raise forms.ValidationError("Enter a whole number from 2 to 100, or 'auto'.")
        return int(value)


def _progress_html(run: TrainingRun):
    live = run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
    return format_html(
        '<progress max="100" value="{}" aria-label="training progress">{}%</progress> {}% {}{}',
        run.progress, run.progress, run.progress, run.stage or run.status,
        # Live progress: the page reloads itself while the run is queued or running.
        mark_safe("<script>setTimeout(function () { location.reload(); }, 2000);</script>") if live else "",
    )


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "algorithm", "status", "progress_list", "is_active", "n_clusters", "n_songs", "silhouette", "created_at", "created_by")
    list_filter = ("status", "algorithm", "is_active")
    actions = ["activate_run"]
    readonly_fields = (
        "status", "progress_bar", "is_active", "algorithm", "scaler", "features", "params", "n_songs", "n_clusters",
        "metrics", "k_scan_table", "cluster_table", "timings", "sklearn_version", "artifact_path", "artifact_sha256",
        "error", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at",
    )
    exclude = ("stage", "progress", "k_scan")
    change_list_template = "admin/clustering/trainingrun/change_list.html"

    def has_add_permission(self, request):
        return False  # runs are created by the Retrain form

    def get_urls(self):
        return [
            path("retrain/", self.admin_site.admin_view(self.retrain_view), name="clustering_trainingrun_retrain"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        services.training_runs_fail_stale()
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        services.training_runs_fail_stale()
        return super().change_view(request, object_id, form_url, extra_context)

    def retrain_view(self, request):
        if not request.user.has_perm("clustering.add_trainingrun") and not request.user.is_superuser:
            messages.error(request, "You may not start training runs.")
            return redirect("admin:clustering_trainingrun_changelist")
        form = RetrainForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    run = services.training_run_create(
                        user=request.user, algorithm=data["algorithm"], k=data["k"], scaler=data["scaler"],
                        features=data["features"], scan_sample_size=data["scan_sample_size"],
                        scan_k_range=(data["scan_k_min"], data["scan_k_max"]), activate=data["activate"],
                    )
            except services.TrainingError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Training run #{run.pk} is queued; this page follows its progress.")
                return redirect("admin:clustering_trainingrun_change", run.pk)
        context = {**self.admin_site.each_context(request), "title": "Retrain the clustering", "form": form, "opts": self.model._meta}
        return render(request, "admin/clustering/trainingrun/retrain.html", context)

    @admin.action(description="Activate the selected successful run (rolls labels to it)")
    def activate_run(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one run to activate.", messages.ERROR)
            return
        run = queryset.get()
        try:
            services.training_run_activate(run=run)
        except (services.TrainingError, services.ArtifactError) as exc:
            self.message_user(request, f"Run #{run.pk} was not activated: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Run #{run.pk} is now active; every song carries its labels.", messages.SUCCESS)

    @admin.display(description="Progress")
    def progress_bar(self, run):
        return _progress_html(run)

    @admin.display(description="Progress")
    def progress_list(self, run):
        return format_html('<progress max="100" value="{}">{}%</progress> {}', run.progress, run.progress, run.stage)

    @admin.display(description="Silhouette")
    def silhouette(self, run):
        value = (run.metrics or {}).get("silhouette")
        return "—" if value is None else f"{value:.3f}"

    @admin.display(description="k scan (elbow and silhouette)")
    def k_scan_table(self, run):
        if not run.k_scan:
            return "—"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (r.get("k"), _fmt(r.get("inertia"), ".0f"), _fmt(r.get("silhouette")), _fmt(r.get("davies_bouldin")),
                 _fmt(r.get("calinski_harabasz"), ".0f"), _fmt(r.get("min_cluster_share")))
                for r in run.k_scan
            ),
        )
        return format_html(
            "<table><thead><tr><th>k</th><th>inertia</th><th>silhouette</th><th>Davies–Bouldin</th>"
            "<th>Calinski–Harabasz</th><th>smallest cluster share</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Clusters")
    def cluster_table(self, run):
        clusters = run.clusters.order_by("label")
        if not clusters:
            return "—"
        rows = format_html_join(
            "", '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
            ((c.label, reverse("admin:clustering_cluster_change", args=[c.pk]), c.name, c.size, c.description) for c in clusters),
        )
        return format_html(
            "<table><thead><tr><th>label</th><th>name</th><th>songs</th><th>profile</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


def _fmt(value, spec=".3f"):
    return "—" if value is None else format(value, spec)


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "run", "label", "size", "name_is_custom")
    list_display_links = ("id",)
    list_editable = ("name",)
    list_filter = ("run__is_active", "run")
    fields = ("name", "run", "label", "size", "description", "name_is_custom", "lineage", "profile")
    readonly_fields = ("run", "label", "size", "description", "name_is_custom", "lineage", "profile")

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        if "name" in form.changed_data:
            obj.name_is_custom = True  # an admin's name carries over to later runs
        super().save_model(request, obj, form, change)
