from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from songs.background import BrokerUnavailable

from .errors import ArtifactError, TrainingError
from .models import Cluster, TrainingRun

# The services, the selectors and the training spec are imported where they
# are used: this module loads in every Django process (admin autodiscovery),
# and they bring scikit-learn, SciPy, faiss and pandas (~1-3 s, ~100 MB) into
# processes that never train, such as `manage.py import_songs`.


def _services():
    from . import services

    return services


def _spec_params():
    from .ml.spec import spec_params

    return spec_params()


def _range_field(name: str, end: str) -> str:
    """scan_k_range → scan_k_min / scan_k_max."""
    return f"{name.removesuffix('_range')}_{end}"


def _retrain_fields() -> dict[str, forms.Field]:
    """The Retrain form's fields, one per training parameter (clustering.ml.spec);
    the service validates the values and the form shows its message."""
    fields: dict[str, forms.Field] = {}
    for name, default, meta in _spec_params():
        kind, text, label = meta["kind"], meta["help"], meta["label"] or None
        if kind == "choice":
            fields[name] = forms.ChoiceField(
                choices=[(c, c) for c in meta["choices"]], initial=default, help_text=text, label=label
            )
        elif kind == "k":
            fields[name] = forms.CharField(initial=str(default), help_text=text, label=label)
        elif kind == "int":
            fields[name] = forms.IntegerField(initial=default, required=False, help_text=text, label=label)
        elif kind == "bool":
            fields[name] = forms.BooleanField(initial=default, required=False, help_text=text, label=label)
        elif kind == "features":
            fields[name] = forms.MultipleChoiceField(
                choices=[(c, c) for c in meta["choices"]],
                initial=list(default),
                widget=forms.CheckboxSelectMultiple,
                help_text=text,
            )
        elif kind == "k_range":
            for end, value in zip(("min", "max"), default):
                fields[_range_field(name, end)] = forms.IntegerField(
                    initial=value, label=f"{label or name} {'from' if end == 'min' else 'to'}", help_text=text
                )
        else:
            fields[name] = forms.JSONField(initial=dict, required=False, help_text=text, label=label)
    return fields


class RetrainForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_retrain_fields())

    def spec_params(self) -> dict:
        """The cleaned values as training_run_create's parameters (an empty field takes the default)."""
        data = {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
        for name, _, meta in _spec_params():
            if meta["kind"] == "k_range":
                data[name] = (data.pop(_range_field(name, "min")), data.pop(_range_field(name, "max")))
        return data


def _progress_html(run: TrainingRun):
    live = run.is_live
    return format_html(
        '<progress max="100" value="{}" aria-label="training progress">{}%</progress> {}% {}{}',
        run.progress,
        run.progress,
        run.progress,
        run.stage or run.status,
        # Live progress: the page reloads itself while the run is queued or
        # running (a meta refresh: no inline script under the CSP).
        mark_safe('<meta http-equiv="refresh" content="2">') if live else "",
    )


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "algorithm",
        "status",
        "progress_list",
        "is_active",
        "n_clusters",
        "n_songs",
        "silhouette",
        "created_at",
        "created_by",
    )
    list_filter = ("status", "algorithm", "is_active")
    actions = ["activate_run"]
    readonly_fields = (
        "status",
        "progress_bar",
        "is_active",
        "algorithm",
        "scaler",
        "features",
        "params",
        "n_songs",
        "n_clusters",
        "metrics",
        "k_choice_text",
        "k_scan_table",
        "cluster_table",
        "timings",
        "sklearn_version",
        "artifact_path",
        "artifact_sha256",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
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
        _services().training_runs_fail_stale()
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        _services().training_runs_fail_stale()
        return super().change_view(request, object_id, form_url, extra_context)

    def retrain_view(self, request):
        if not request.user.has_perm("clustering.add_trainingrun") and not request.user.is_superuser:
            messages.error(request, "You may not start training runs.")
            return redirect("admin:clustering_trainingrun_changelist")
        form = RetrainForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    run = _services().training_run_create(user=request.user, **form.spec_params())
            except (TrainingError, BrokerUnavailable) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Training run #{run.pk} is queued; this page follows its progress.")
                return redirect("admin:clustering_trainingrun_change", run.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Retrain the clustering",
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/clustering/trainingrun/retrain.html", context)

    @admin.action(description="Activate the selected successful run (its labels become the ones shown)")
    def activate_run(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one run to activate.", messages.ERROR)
            return
        run = queryset.get()
        try:
            _services().training_run_activate(run=run)
        except (TrainingError, ArtifactError) as exc:
            self.message_user(request, f"Run #{run.pk} was not activated: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Run #{run.pk} is now active; songs show its labels.", messages.SUCCESS)

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

    @admin.display(description="Why this k")
    def k_choice_text(self, run):
        from .selectors import run_k_choice

        why = run_k_choice(run)  # the same sentence as the dashboard's and the runs page's
        return why["text"] if why else "Trained with a fixed k (no scan)."

    @admin.display(description="k scan (elbow and silhouette)")
    def k_scan_table(self, run):
        if not run.k_scan:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    r.get("k"),
                    _fmt(r.get("inertia"), ".0f"),
                    _fmt(r.get("silhouette")),
                    _fmt(r.get("davies_bouldin")),
                    _fmt(r.get("calinski_harabasz"), ".0f"),
                    _fmt(r.get("min_cluster_share")),
                )
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
            "",
            '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
            (
                (c.label, reverse("admin:clustering_cluster_change", args=[c.pk]), c.name, c.size, c.description)
                for c in clusters
            ),
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
