"""The experiment lifecycle in the admin: the list actions (activate, end after a confirmation,
duplicate) and the per-experiment pages behind the editor's buttons (activate, end and
rotate-salt with their confirmation pages, duplicate). Every write goes through services/,
audited with source "admin".

A page view takes (model_admin, request, experiment): ExperimentAdmin finds the experiment
and checks the permission first (see experiment_admin.ExperimentPage)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse

from recsys_experiments.lib.errors import DomainError
from recsys_experiments.models import ExperimentStatus
from recsys_experiments.selectors import auto_assignments_count
from recsys_experiments.services.experiments import (
    experiment_activate,
    experiment_delete,
    experiment_duplicate,
    experiment_end,
    experiment_rotate_salt,
)

SOURCE = "admin"
END_CONFIRMATION = "admin/recsys_experiments/experiment/end_confirmation.html"
DELETE_CONFIRMATION = "admin/recsys_experiments/experiment/delete_confirmation_drafts.html"


# --- list actions ---------------------------------------------------------------------------


def _each(model_admin, request, queryset, service, verb):
    done = []
    for experiment in queryset:
        try:
            service(experiment=experiment, actor=request.user, source=SOURCE)
            done.append(experiment.key)
        except DomainError as error:
            model_admin.message_user(request, error.message, messages.ERROR)
    if done:
        model_admin.message_user(request, f"{verb}: {', '.join(done)}", messages.SUCCESS)


@admin.action(description="Activate selected experiments", permissions=["change"])
def activate_selected(model_admin, request, queryset):
    _each(model_admin, request, queryset, experiment_activate, "Activated")


@admin.action(description="End selected experiments…", permissions=["change"])
def end_selected(model_admin, request, queryset):
    if request.POST.get("post") == "yes":
        _each(model_admin, request, queryset, experiment_end, "Ended")
        return None
    return TemplateResponse(
        request,
        END_CONFIRMATION,
        {
            **model_admin.admin_site.each_context(request),
            "title": "End experiments?",
            "opts": model_admin.model._meta,
            "experiments": queryset,
            "not_active": [e for e in queryset if e.status != ExperimentStatus.ACTIVE],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "end_selected",
        },
    )


@admin.action(description="Duplicate selected experiments", permissions=["add"])
def duplicate_selected(model_admin, request, queryset):
    copies = []
    for experiment in queryset:
        try:
            copy = experiment_duplicate(experiment=experiment, actor=request.user, source=SOURCE)
        except DomainError as error:
            model_admin.message_user(
                request, f"{experiment.key} not duplicated: {error.message}", messages.ERROR
            )
        else:
            copies.append(copy.key)
    if copies:
        model_admin.message_user(request, f"Created drafts: {', '.join(copies)}", messages.SUCCESS)


@admin.action(description="Delete selected drafts…", permissions=["delete"])
def delete_selected_drafts(model_admin, request, queryset):
    """Replaces Django's "Delete selected": only drafts, through the service (audited, keys
    of drafts with assignments retired); the others are refused with the reason."""
    if request.POST.get("post") == "yes":
        _each(model_admin, request, queryset, experiment_delete, "Deleted drafts")
        return None
    return TemplateResponse(
        request,
        DELETE_CONFIRMATION,
        {
            **model_admin.admin_site.each_context(request),
            "title": "Delete drafts?",
            "opts": model_admin.model._meta,
            "experiments": queryset,
            "drafts": [e for e in queryset if e.status == ExperimentStatus.DRAFT],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "delete_selected_drafts",
        },
    )


ACTIONS = (activate_selected, end_selected, duplicate_selected, delete_selected_drafts)


# --- per-experiment pages -------------------------------------------------------------------


def _run(model_admin, request, experiment, service, success: str, **kwargs):
    try:
        result = service(experiment=experiment, actor=request.user, source=SOURCE, **kwargs)
    except DomainError as error:
        model_admin.message_user(request, error.message, messages.ERROR)
        return None
    model_admin.message_user(request, success, messages.SUCCESS)
    return result


def activate_view(model_admin, request, experiment):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    _run(model_admin, request, experiment, experiment_activate, f"Activated {experiment.key}.")
    return HttpResponseRedirect(model_admin.change_url(experiment))


def end_view(model_admin, request, experiment):
    if request.method == "POST":
        _run(model_admin, request, experiment, experiment_end, f"Ended {experiment.key}.")
        return HttpResponseRedirect(model_admin.change_url(experiment))
    return TemplateResponse(
        request,
        END_CONFIRMATION,
        model_admin.page_context(
            request,
            experiment,
            title=f"End {experiment.key}?",
            experiments=[experiment],
            not_active=[] if experiment.status == ExperimentStatus.ACTIVE else [experiment],
        ),
    )


def duplicate_view(model_admin, request, experiment):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    copy = _run(
        model_admin, request, experiment, experiment_duplicate, "Duplicated as a new draft."
    )
    return HttpResponseRedirect(model_admin.change_url(copy or experiment))


def rotate_salt_view(model_admin, request, experiment):
    if request.method == "POST":
        result = _run(
            model_admin,
            request,
            experiment,
            experiment_rotate_salt,
            f"Rotated the salt of {experiment.key}.",
            confirm=request.POST.get("confirm") == "yes",
        )
        if result is not None:
            model_admin.message_user(
                request, f"{result[1]} automatic assignments will be re-derived.", messages.INFO
            )
        return HttpResponseRedirect(model_admin.change_url(experiment))
    return TemplateResponse(
        request,
        "admin/recsys_experiments/experiment/rotate_salt.html",
        model_admin.page_context(
            request,
            experiment,
            title=f"Rotate the salt of {experiment.key}?",
            moving=auto_assignments_count(experiment),
            manual=experiment.assignments.filter(assignment_mode="manual").count(),
        ),
    )
