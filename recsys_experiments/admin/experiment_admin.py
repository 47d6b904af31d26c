"""Experiments in the admin: list with badges and split summaries, the editor (forms.py),
lifecycle buttons and actions (lifecycle.py), and the per-experiment pages: those of this
package and those other apps register (telemetry's results page), each at
<id>/<route>/ with the URL name admin:<name>. Every write goes through services/, audited
with source "admin"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import ClassVar

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from recsys_experiments.lib.display import schedule_summary, split_summary, status_colour
from recsys_experiments.lib.errors import DomainError, NotFound
from recsys_experiments.lib.text import shown
from recsys_experiments.models import Experiment, ExperimentStatus
from recsys_experiments.selectors import auto_assignments_count, experiment_get
from recsys_experiments.services.experiments import (
    experiment_create,
    experiment_delete,
    experiment_update,
)

from . import lifecycle
from .forms import ExperimentForm
from .lifecycle import SOURCE


@dataclass(frozen=True)
class ExperimentPage:
    """A page of one experiment, at `<id>/<route>/` and named `admin:<name>`.

    `view(model_admin, request, experiment)` is called once the experiment is found and the
    user may see it (`changes`: may change it); an id naming no experiment goes back to the
    list with a message. `by_key`: also bookmarkable as `by-key/<key>/<route>/`."""

    route: str
    view: Callable
    name: str
    changes: bool = False
    by_key: bool = False


LIFECYCLE_PAGES = (
    ExperimentPage("activate", lifecycle.activate_view, "experiment_activate", changes=True),
    ExperimentPage("end", lifecycle.end_view, "experiment_end", changes=True, by_key=True),
    ExperimentPage("duplicate", lifecycle.duplicate_view, "experiment_duplicate"),
    ExperimentPage(
        "rotate-salt",
        lifecycle.rotate_salt_view,
        "experiment_rotate_salt",
        changes=True,
        by_key=True,
    ),
)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    list_display = (
        "key",
        "status_badge",
        "schedule",
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
    actions = lifecycle.ACTIONS
    change_form_template = "admin/recsys_experiments/experiment/change_form.html"
    change_list_template = "admin/recsys_experiments/experiment/change_list.html"

    # Per-experiment pages by route: the lifecycle's, and those added with add_page.
    pages: ClassVar[dict[str, ExperimentPage]] = {page.route: page for page in LIFECYCLE_PAGES}

    @classmethod
    def add_page(cls, page: ExperimentPage) -> None:
        """Add a per-experiment page (from another app's AppConfig.ready(), before the URLs
        are first built). Adding the same route again replaces it."""
        ExperimentAdmin.pages[page.route] = page

    @property
    def media(self):
        # The admin's own add/remove-row machinery for the variant rows (forms.VariantFormSet),
        # loaded as an inline's media is: after jQuery and jquery.init.js.
        extra = "" if settings.DEBUG else ".min"
        return super().media + forms.Media(
            js=[
                f"admin/js/vendor/jquery/jquery{extra}.js",
                "admin/js/jquery.init.js",
                "admin/js/inlines.js",
            ]
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Django's "Delete selected" would delete active experiments unaudited:
        # lifecycle.delete_selected_drafts replaces it.
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == ExperimentStatus.DRAFT)

    def delete_model(self, request, obj):
        experiment_delete(experiment=obj, actor=request.user, source=SOURCE)

    def delete_view(self, request, object_id, extra_context=None):
        experiment = self.get_object(request, unquote(object_id))
        if experiment is not None and experiment.status != ExperimentStatus.DRAFT:
            if not self.has_view_or_change_permission(request, experiment):
                raise PermissionDenied
            self.message_user(
                request,
                f'Cannot delete experiment "{experiment.key}": it is {experiment.status}; only '
                "drafts can be deleted"
                + (" (end it instead)." if experiment.status == ExperimentStatus.ACTIVE else "."),
                messages.ERROR,
            )
            return HttpResponseRedirect(self.change_url(experiment))
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:  # activated by someone else since the page was shown
            self.message_user(request, f"Not deleted: {error.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_fieldsets(self, request, obj=None):
        # The variant rows (form.variant_formset) are rendered after the first fieldset by
        # the change_form template.
        return (
            (None, {"fields": ("key", "description", "status_badge", "salt")}),
            (
                "Who is enrolled",
                {"fields": ("traffic", ("namespace_name", "namespace_start", "namespace_end"))},
            ),
            ("Targeting", {"fields": ("platform", ("min_app_version", "max_app_version"))}),
            ("Guardrails", {"fields": ("guardrails",)}),
            ("Inference", {"fields": ("sequential_testing",)}),
            (
                "Schedule",
                {"fields": ("schedule", ("started_at", "ended_at"), "created_at", "updated_at")},
            ),
        )

    def get_readonly_fields(self, request, obj=None):
        fixed = ["status_badge", "schedule", "salt", "created_at", "updated_at"]
        if obj is not None and obj.status != ExperimentStatus.DRAFT:
            fixed += ["key", "started_at"]
        if obj is not None and obj.status == ExperimentStatus.ENDED:
            fixed += [
                "traffic", "namespace_name", "namespace_start", "namespace_end",
                "platform", "min_app_version", "max_app_version", "guardrails", "ended_at",
                "sequential_testing",
            ]  # fmt: skip
        return fixed

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(enrolled=Count("assignments"))

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="recsys-badge" style="background:{}">{}</span>',
            status_colour(obj.status),
            obj.status,
        )

    @admin.display(description="schedule")
    def schedule(self, obj):
        if obj is None or obj.pk is None or obj._state.adding:
            return "-"
        return (
            schedule_summary(
                status=obj.status,
                started_at=obj.started_at,
                ended_at=obj.ended_at,
                now=timezone.now(),
            )
            or "-"
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
        # The stored weights are normalised: say so, as the editor will show them.
        stored = ", ".join(f"{v['name']} {v['weight']:.6g}" for v in obj.variants)
        self.message_user(request, f"Stored weights (normalised to sum 1): {stored}.")

    # --- per-experiment pages ---------------------------------------------------------------

    def get_urls(self):
        by_key = [
            path("by-key/<str:key>/", self.admin_site.admin_view(self.by_key_view)),
            path("by-key/<str:key>/<str:page>/", self.admin_site.admin_view(self.by_key_view)),
        ]
        custom = by_key + [
            path(
                f"<path:object_id>/{page.route}/",
                self.admin_site.admin_view(self._experiment_page(page)),
                name=page.name,
            )
            for page in self.pages.values()
        ]
        return custom + super().get_urls()

    def _experiment_page(self, page: ExperimentPage):
        """The page view for the experiment named by the URL's id, after the permission
        check; an id naming no experiment (malformed, a NUL in it, or deleted) is answered
        as Django's change page answers it: back to the list with a message."""

        @wraps(page.view)
        def view(request, object_id):
            experiment = self.get_object(request, unquote(object_id))
            allowed = (
                self.has_change_permission(request, experiment)
                if page.changes
                else self.has_view_or_change_permission(request, experiment)
            )
            if not allowed:
                raise PermissionDenied
            if experiment is None:
                return self._does_not_exist(request, object_id)
            return page.view(self, request, experiment)

        return view

    def _does_not_exist(self, request, object_id) -> HttpResponseRedirect:
        self.message_user(
            request,
            f"Experiment with ID “{shown(unquote(object_id))}” does not exist. "
            "Perhaps it was deleted?",
            messages.WARNING,
        )
        return HttpResponseRedirect(reverse("admin:recsys_experiments_experiment_changelist"))

    def change_url(self, experiment) -> str:
        return reverse("admin:recsys_experiments_experiment_change", args=[experiment.pk])

    def page_context(self, request, experiment, **extra) -> dict:
        """The template context of a per-experiment page."""
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": experiment,
            "experiment": experiment,
            **extra,
        }

    def by_key_view(self, request, key, page=None):
        """/by-key/<key>/[<route>]/: bookmarkable pages named by key (those with by_key)."""
        try:
            experiment = experiment_get(key)
        except NotFound as error:
            raise Http404(error.message) from None
        if page is None:
            return HttpResponseRedirect(self.change_url(experiment))
        target = self.pages.get(page)
        if target is None or not target.by_key:
            raise Http404(f"no page {page!r}")
        url = reverse(f"admin:{target.name}", args=[experiment.pk])
        # A bookmark's ?phase=…&view=… must reach the page it names.
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(f"{url}?{query}" if query else url)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        experiment = self.get_object(request, unquote(object_id))
        if experiment is None:
            if not self.has_view_or_change_permission(request):
                raise PermissionDenied
            return self._does_not_exist(request, object_id)
        extra = {
            **(extra_context or {}),
            "auto_assignments": auto_assignments_count(experiment),
            "status_colour": status_colour(experiment.status),
        }
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
