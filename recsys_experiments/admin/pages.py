"""The admin page that is no model's: Assignments (find a user, see and change their
variants), registered on the site by the admin package (see admin/__init__.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from recsys_experiments.lib.errors import DomainError
from recsys_experiments.models import Experiment
from recsys_experiments.selectors import experiment_get, user_assignments, user_find
from recsys_experiments.services.assignments import assignment_override, assignment_reset

SOURCE = "admin"
CHANGE_ASSIGNMENT = "recsys_experiments.change_assignment"
VIEW_ASSIGNMENT = "recsys_experiments.view_assignment"


def may_see_assignments(request) -> bool:
    return request.user.has_perm(VIEW_ASSIGNMENT) or request.user.has_perm(CHANGE_ASSIGNMENT)


def assignments_view(site):
    def view(request):
        can_change = request.user.has_perm(CHANGE_ASSIGNMENT)
        if not (can_change or request.user.has_perm(VIEW_ASSIGNMENT)):
            raise PermissionDenied
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            return _change_assignment(request)
        query = request.GET.get("q", "").strip()
        state, error = None, None
        if query:
            try:
                state = user_assignments(user_find(query))
            except DomainError as problem:
                error = problem.message
        if state is not None:
            variants = dict(
                Experiment.objects.filter(
                    key__in=[row["experiment_key"] for row in state["active_experiments"]]
                ).values_list("key", "variants")
            )
            for row in state["active_experiments"]:
                row["variant_names"] = [v["name"] for v in variants[row["experiment_key"]]]
        return TemplateResponse(
            request,
            "admin/recsys_experiments/assignments.html",
            {
                **site.each_context(request),
                "title": "Assignments",
                "query": query,
                "state": state,
                "error": error,
                "can_change": can_change,
            },
        )

    return view


def _change_assignment(request):
    user_id = request.POST.get("user_id", "")
    back = reverse("admin:recsys_assignments") + "?" + urlencode({"q": user_id})
    try:
        user = user_find(user_id)
        experiment = experiment_get(request.POST.get("experiment_key", ""))
        if request.POST.get("action") == "reset":
            deleted = assignment_reset(
                experiment=experiment, user=user, actor=request.user, source=SOURCE
            )
            messages.success(
                request,
                f"{user.username} is back to automatic assignment in {experiment.key}."
                if deleted
                else f"{user.username} had no stored variant in {experiment.key}.",
            )
        else:
            variant = request.POST.get("variant", "")
            assignment_override(
                experiment=experiment,
                user=user,
                variant=variant,
                actor=request.user,
                source=SOURCE,
            )
            messages.success(request, f"{user.username} now sees {variant} in {experiment.key}.")
    except DomainError as error:
        messages.error(request, error.message)
    return HttpResponseRedirect(back)
