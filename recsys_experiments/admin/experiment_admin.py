"""Experiments in the admin: list with badges and split summaries, an editor validated by the
same rules as the API, lifecycle buttons and actions (end and rotate-salt confirm first), and
a results page. Every write goes through services/, audited with source "admin"."""

from __future__ import annotations

import json
from functools import wraps

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from recsys_experiments.analysis import experiment_results
from recsys_experiments.errors import DomainError, IllegalTransition, InvalidInput, NotFound
from recsys_experiments.lib.experiment_rules import clean_definition
from recsys_experiments.lib.knobs import KNOBS
from recsys_experiments.lib.svg_chart import line_chart
from recsys_experiments.lib.text import MAX_JSON_DEPTH, shown
from recsys_experiments.models import AuditEntry, Experiment, ExperimentStatus, Platform
from recsys_experiments.selectors import (
    experiment_assignment_counts,
    experiment_daily_series,
    experiment_get,
)
from recsys_experiments.services.experiments import (
    auto_assignments_count,
    check_edit_allowed,
    experiment_activate,
    experiment_create,
    experiment_duplicate,
    experiment_end,
    experiment_rotate_salt,
    experiment_update,
)

SOURCE = "admin"
STATUS_COLOURS = {"draft": "#6b6b6b", "active": "#2e7d32", "ended": "#8d6e63"}
# Where each rule error path is shown in the form.
ERROR_FIELDS = {
    "key": "key",
    "description": "description",
    "traffic": "traffic",
    "namespace": "namespace_name",
    "namespace.name": "namespace_name",
    "namespace.start": "namespace_start",
    "namespace.end": "namespace_end",
    "targeting": "min_app_version",
    "targeting.platform": "platform",
    "targeting.min_app_version": "min_app_version",
    "targeting.max_app_version": "max_app_version",
    "guardrails": "guardrails",
}


def split_summary(variants: list[dict]) -> str:
    return " · ".join(f"{variant['name']} {variant['weight']:.0%}" for variant in variants)


class IndentedJSONField(forms.JSONField):
    """One variant per line in the editor, not one long line."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:  # json.loads gives up on deep nesting this way
            raise ValidationError(
                f"is nested too deeply: at most {MAX_JSON_DEPTH} levels", code="invalid"
            ) from None

    def bound_data(self, data, initial):
        # A form shown again with errors keeps the text as typed: decoding it once more
        # could fail the same way, and a decoded "\ud800" escape could not even be sent.
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class ExperimentForm(forms.ModelForm):
    variants = IndentedJSONField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 80, "class": "recsys-variants"}),
        help_text=(
            'A JSON list: [{"name": "control", "weight": 0.5, "config": {}}, …]. At least two '
            "variants; weights > 0 summing to 1 (± 0.01); config keys are ranking knobs: "
            + ", ".join(sorted(KNOBS))
            + "."
        ),
        initial=[
            {"name": "control", "weight": 0.5, "config": {}},
            {"name": "treatment", "weight": 0.5, "config": {}},
        ],
    )
    guardrails = IndentedJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text='Optional, e.g. [{"metric": "like_rate", "max_drop": 0.02}, '
        '{"metric": "untagged_impressions", "max_share": 0.01}].',
    )
    platform = forms.ChoiceField(choices=[("", "any platform"), *Platform.choices], required=False)

    class Meta:
        model = Experiment
        fields = (
            "key",
            "description",
            "variants",
            "traffic",
            "namespace_name",
            "namespace_start",
            "namespace_end",
            "platform",
            "min_app_version",
            "max_app_version",
            "guardrails",
        )
        widgets = {"key": forms.TextInput(attrs={"size": 40})}
        help_texts = {
            "traffic": "Share of users enrolled, 0 to 1.",
            "namespace_name": "Experiments sharing a namespace with disjoint ranges exclude "
            "each other. Leave the three namespace fields empty for none.",
            "min_app_version": "Dotted digits; bounds are inclusive.",
        }

    def clean_platform(self):
        return self.cleaned_data["platform"] or None  # "any platform" is NULL, not ""

    def _value(self, field: str):
        if field in self.cleaned_data:
            return self.cleaned_data[field]
        return getattr(self.instance, field)  # a read-only field keeps the stored value

    def clean(self):
        cleaned = super().clean()
        namespace = [self._value(f) for f in ("namespace_name", "namespace_start", "namespace_end")]
        data = {
            "key": self._value("key"),
            "description": self._value("description") or "",
            "variants": self._value("variants"),
            "salt": self.instance.salt or None,
            "traffic": self._value("traffic"),
            "namespace": None
            if all(part in (None, "") for part in namespace)
            else dict(zip(("name", "start", "end"), namespace, strict=True)),
            "targeting": {
                rule: self._value(rule) or None
                for rule in ("platform", "min_app_version", "max_app_version")
            },
            "guardrails": self._value("guardrails") or [],
        }
        try:
            self.definition = clean_definition(data)
            # Not `instance.pk`: a new experiment has its uuid from the start.
            if not self.instance._state.adding:
                check_edit_allowed(self.instance, self.definition)
        except InvalidInput as error:
            for path_name, reasons in error.errors.items():
                field = ERROR_FIELDS.get(path_name)
                if field is None and path_name.startswith(("variants", "guardrails")):
                    field = path_name.split("[")[0]
                message = "; ".join(reasons)
                if field in self.fields:
                    self.add_error(
                        field, message if field == path_name else f"{path_name}: {message}"
                    )
                else:
                    self.add_error(None, f"{path_name}: {message}")
        except IllegalTransition as error:
            self.add_error(None, error.message)
        return cleaned


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    list_display = (
        "key",
        "status_badge",
        "started_at",
        "ended_at",
        "updated_at",
        "split",
        "traffic_share",
        "enrolled_users",
    )
    list_filter = ("status",)
    search_fields = ("key", "description")
    ordering = ("-updated_at",)
    actions = ("activate_selected", "end_selected", "duplicate_selected")
    change_form_template = "admin/recsys_experiments/experiment/change_form.html"
    change_list_template = "admin/recsys_experiments/experiment/change_list.html"

    def get_fieldsets(self, request, obj=None):
        return (
            (None, {"fields": ("key", "description", "status_badge", "salt")}),
            ("Variants", {"fields": ("variants",)}),
            (
                "Who is enrolled",
                {"fields": ("traffic", ("namespace_name", "namespace_start", "namespace_end"))},
            ),
            ("Targeting", {"fields": ("platform", ("min_app_version", "max_app_version"))}),
            ("Guardrails", {"fields": ("guardrails",)}),
            ("Dates", {"fields": ("started_at", "ended_at", "created_at", "updated_at")}),
        )

    def get_readonly_fields(self, request, obj=None):
        fixed = ["status_badge", "salt", "started_at", "ended_at", "created_at", "updated_at"]
        if obj is not None and obj.status != ExperimentStatus.DRAFT:
            fixed.append("key")
        if obj is not None and obj.status == ExperimentStatus.ENDED:
            fixed += [
                "variants", "traffic", "namespace_name", "namespace_start", "namespace_end",
                "platform", "min_app_version", "max_app_version", "guardrails",
            ]  # fmt: skip
        return fixed

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(enrolled=Count("assignments"))

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="recsys-badge" style="background:{}">{}</span>',
            STATUS_COLOURS.get(obj.status, "#444"),
            obj.status,
        )

    @admin.display(description="split")
    def split(self, obj):
        return format_html(
            '<span style="white-space:nowrap">{}</span>', split_summary(obj.variants)
        )

    @admin.display(description="traffic", ordering="traffic")
    def traffic_share(self, obj):
        return f"{obj.traffic:.0%}"

    @admin.display(description="enrolled users", ordering="enrolled")
    def enrolled_users(self, obj):
        return obj.enrolled  # annotated by get_queryset

    # --- saving goes through the services ------------------------------------------------

    def save_model(self, request, obj, form, change):
        if change:
            current = Experiment.objects.get(pk=obj.pk)
            saved = experiment_update(
                experiment=current,
                data=form.definition,
                partial=False,
                actor=request.user,
                source=SOURCE,
            )
        else:
            saved = experiment_create(data=form.definition, actor=request.user, source=SOURCE)
        obj.pk = saved.pk
        obj.refresh_from_db()

    # --- list actions -----------------------------------------------------------------------

    def _each(self, request, queryset, service, verb):
        done = []
        for experiment in queryset:
            try:
                service(experiment=experiment, actor=request.user, source=SOURCE)
                done.append(experiment.key)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}", messages.SUCCESS)

    @admin.action(description="Activate selected experiments", permissions=["change"])
    def activate_selected(self, request, queryset):
        self._each(request, queryset, experiment_activate, "Activated")

    @admin.action(description="End selected experiments…", permissions=["change"])
    def end_selected(self, request, queryset):
        if request.POST.get("post") == "yes":
            self._each(request, queryset, experiment_end, "Ended")
            return None
        return TemplateResponse(
            request,
            "admin/recsys_experiments/experiment/end_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": "End experiments?",
                "opts": self.model._meta,
                "experiments": queryset,
                "not_active": [e for e in queryset if e.status != ExperimentStatus.ACTIVE],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "action": "end_selected",
            },
        )

    @admin.action(description="Duplicate selected experiments", permissions=["add"])
    def duplicate_selected(self, request, queryset):
        copies = []
        for experiment in queryset:
            try:
                copy = experiment_duplicate(
                    experiment=experiment, actor=request.user, source=SOURCE
                )
            except DomainError as error:
                self.message_user(
                    request, f"{experiment.key} not duplicated: {error.message}", messages.ERROR
                )
            else:
                copies.append(copy.key)
        if copies:
            self.message_user(request, f"Created drafts: {', '.join(copies)}", messages.SUCCESS)

    # --- per-experiment pages ---------------------------------------------------------------

    def get_urls(self):
        # page: (view, whether it changes the experiment rather than only reads it)
        pages = {
            "activate": (self.activate_view, True),
            "end": (self.end_view, True),
            "duplicate": (self.duplicate_view, False),
            "rotate-salt": (self.rotate_salt_view, True),
            "results": (self.results_view, False),
        }
        by_key = [
            path("by-key/<str:key>/", self.admin_site.admin_view(self.by_key_view)),
            path("by-key/<str:key>/<str:page>/", self.admin_site.admin_view(self.by_key_view)),
        ]
        custom = by_key + [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(self._experiment_page(view, change=change)),
                name=f"experiment_{name.replace('-', '_')}",
            )
            for name, (view, change) in pages.items()
        ]
        return custom + super().get_urls()

    def _experiment_page(self, view, *, change: bool):
        """The page view for the experiment named by the URL's id, after the permission
        check; an id naming no experiment (malformed, a NUL in it, or deleted) is answered
        as Django's change page answers it: back to the list with a message."""

        @wraps(view)
        def page(request, object_id):
            experiment = self.get_object(request, unquote(object_id))
            allowed = (
                self.has_change_permission(request, experiment)
                if change
                else self.has_view_or_change_permission(request, experiment)
            )
            if not allowed:
                raise PermissionDenied
            if experiment is None:
                return self._does_not_exist(request, object_id)
            return view(request, experiment)

        return page

    def _does_not_exist(self, request, object_id) -> HttpResponseRedirect:
        self.message_user(
            request,
            f"Experiment with ID “{shown(unquote(object_id))}” does not exist. "
            "Perhaps it was deleted?",
            messages.WARNING,
        )
        return HttpResponseRedirect(reverse("admin:recsys_experiments_experiment_changelist"))

    def _change_url(self, experiment) -> str:
        return reverse("admin:recsys_experiments_experiment_change", args=[experiment.pk])

    def _context(self, request, experiment, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": experiment,
            "experiment": experiment,
            **extra,
        }

    def _run(self, request, experiment, service, success: str, **kwargs):
        try:
            result = service(experiment=experiment, actor=request.user, source=SOURCE, **kwargs)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return None
        self.message_user(request, success, messages.SUCCESS)
        return result

    def by_key_view(self, request, key, page=None):
        """/by-key/<key>/[results|rotate-salt|end]/: bookmarkable pages named by key."""
        try:
            experiment = experiment_get(key)
        except NotFound as error:
            raise Http404(error.message) from None
        if page is None:
            return HttpResponseRedirect(self._change_url(experiment))
        if page not in {"results", "rotate-salt", "end"}:
            raise Http404(f"no page {page!r}")
        return HttpResponseRedirect(
            reverse(f"admin:experiment_{page.replace('-', '_')}", args=[experiment.pk])
        )

    def activate_view(self, request, experiment):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        self._run(request, experiment, experiment_activate, f"Activated {experiment.key}.")
        return HttpResponseRedirect(self._change_url(experiment))

    def end_view(self, request, experiment):
        if request.method == "POST":
            self._run(request, experiment, experiment_end, f"Ended {experiment.key}.")
            return HttpResponseRedirect(self._change_url(experiment))
        return TemplateResponse(
            request,
            "admin/recsys_experiments/experiment/end_confirmation.html",
            self._context(
                request,
                experiment,
                title=f"End {experiment.key}?",
                experiments=[experiment],
                not_active=[] if experiment.status == ExperimentStatus.ACTIVE else [experiment],
            ),
        )

    def duplicate_view(self, request, experiment):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise PermissionDenied
        copy = self._run(request, experiment, experiment_duplicate, "Duplicated as a new draft.")
        return HttpResponseRedirect(self._change_url(copy or experiment))

    def rotate_salt_view(self, request, experiment):
        if request.method == "POST":
            result = self._run(
                request,
                experiment,
                experiment_rotate_salt,
                f"Rotated the salt of {experiment.key}.",
                confirm=request.POST.get("confirm") == "yes",
            )
            if result is not None:
                self.message_user(
                    request, f"{result[1]} automatic assignments will be re-derived.", messages.INFO
                )
            return HttpResponseRedirect(self._change_url(experiment))
        return TemplateResponse(
            request,
            "admin/recsys_experiments/experiment/rotate_salt.html",
            self._context(
                request,
                experiment,
                title=f"Rotate the salt of {experiment.key}?",
                moving=auto_assignments_count(experiment),
                manual=experiment.assignments.filter(assignment_mode="manual").count(),
            ),
        )

    def results_view(self, request, experiment):
        charts, chart_data = [], {}
        for days in (7, 30):
            series = experiment_daily_series(experiment, days=days)
            chart_data[f"last_{days}_days"] = series
            short = [label[5:] for label in series["labels"]]
            charts.append(
                {
                    "days": days,
                    "impressions": mark_safe(  # noqa: S308 - line_chart escapes every label
                        line_chart(
                            title=f"Impressions, last {days} days",
                            labels=short,
                            series=series["impressions"],
                            y_format=lambda v: f"{v:.0f}",
                        )
                    ),
                    "like_rate": mark_safe(  # noqa: S308 - line_chart escapes every label
                        line_chart(
                            title=f"Like rate, last {days} days",
                            labels=short,
                            series=series["like_rate"],
                            y_format=lambda v: f"{v:.0%}",
                        )
                    ),
                }
            )
        return TemplateResponse(
            request,
            "admin/recsys_experiments/experiment/results.html",
            self._context(
                request,
                experiment,
                title=f"Results: {experiment.key}",
                counts=experiment_assignment_counts(experiment),
                results=experiment_results(experiment, days=7),
                charts=charts,
                chart_data=chart_data,
                audit=AuditEntry.objects.filter(experiment=experiment).select_related(
                    "actor", "subject_user"
                )[:50],
                variants_json=json.dumps(experiment.variants, indent=2),
            ),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        experiment = self.get_object(request, unquote(object_id))
        if experiment is None:
            if not self.has_view_or_change_permission(request):
                raise PermissionDenied
            return self._does_not_exist(request, object_id)
        extra = {**(extra_context or {}), "auto_assignments": auto_assignments_count(experiment)}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            # The form checks every rule the services apply, so this is a write that came
            # in between (another admin took the key, forced a user into a variant being
            # renamed). The form's own atomic block has rolled the save back.
            self.message_user(request, f"Not saved: {error.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
