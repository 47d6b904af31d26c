"""The admin results page of one experiment (admin:experiment_results, at
/admin/recsys_experiments/experiment/<id>/results/): assignment counts, the daily charts,
the comparisons with control, and the experiment's audit history. Registered on the
experiment admin by telemetry/admin_pages.py."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe

from recsys_experiments.db import reading
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.svg_chart import forest_plot, line_chart
from recsys_experiments.models import AuditEntry
from recsys_experiments.selectors import experiment_assignment_counts
from telemetry.models import Metric

from .analysis import experiment_results, parse_date, parse_mde, parse_phase
from .selectors import (
    BREAKDOWN_VIEWS,
    experiment_daily_breakdown,
    experiment_daily_series,
    parse_breakdown_view,
)

BREAKDOWN_TITLES = {"source": "Source", "position": "Position", "genre": "Genre"}


def _results(request, experiment) -> tuple[dict, dict]:
    """The results for ?phase=N&from=YYYY-MM-DD&to=YYYY-MM-DD&mde=0.03 (each optional: the
    latest phase, its whole run, the default MDE); a bad value is shown as an error and the
    defaults are used."""
    chosen = {name: request.GET.get(name, "") for name in ("phase", "from", "to", "mde")}
    try:
        results = experiment_results(
            experiment,
            phase=parse_phase(chosen["phase"]),
            date_from=parse_date(chosen["from"], "from"),
            date_to=parse_date(chosen["to"], "to"),
            mde=parse_mde(chosen["mde"]),
        )
    except InvalidInput as error:
        messages.error(request, f"{error.message}; showing the latest phase, whole run")
        chosen = dict.fromkeys(chosen, "")
        results = experiment_results(experiment)
    return results, chosen


def _breakdown(request, experiment, results: dict, chosen: dict) -> dict:
    """The ?view= tab (source, position or genre; default source) over the results' window,
    its window-total charts, and the tab links keeping phase/from/to."""
    try:
        view = parse_breakdown_view(request.GET.get("view")) or "source"
    except InvalidInput as error:
        messages.error(request, f"{error.message}; showing the source view")
        view = "source"
    breakdown = experiment_daily_breakdown(experiment, view, window=results["window"])
    column = breakdown["category"]
    categories = sorted({total[column] for total in breakdown["totals"]})
    by_key = {(total["variant"], total[column]): total for total in breakdown["totals"]}
    variants = sorted({total["variant"] for total in breakdown["totals"]})
    labels = [str(category) for category in categories]
    charts = []
    for field, title, y_format in (
        ("impressions", "Impressions", lambda v: f"{v:.0f}"),
        ("like_rate", "Likes per impression", lambda v: f"{v:.0%}"),
    ):
        series = {
            variant: [
                by_key[(variant, category)][field] if (variant, category) in by_key else None
                for category in categories
            ]
            for variant in variants
        }
        charts.append(
            mark_safe(  # noqa: S308 - line_chart escapes every label
                line_chart(
                    title=f"{title} by {column} and variant, window total",
                    labels=labels,
                    series=series,
                    y_format=y_format,
                )
            )
        )
    keep = {name: value for name, value in chosen.items() if value}
    tabs = [
        {
            "view": name,
            "title": BREAKDOWN_TITLES[name],
            "url": "?" + urlencode({**keep, "view": name}) + "#recsys-breakdown",
            "current": name == view,
        }
        for name in BREAKDOWN_VIEWS
    ]
    return {
        **breakdown,
        "charts": charts,
        "tabs": tabs,
        # The template cannot look a key up by name: the category under one key.
        "totals": [{**total, "category_value": total[column]} for total in breakdown["totals"]],
        "rows": [{**row, "category_value": row[column]} for row in breakdown["rows"]],
    }


def _relative(row: dict) -> tuple:
    return row["rel_lift"], row["rel_ci_low"], row["rel_ci_high"]


def results_view(model_admin, request, experiment):
    """The page, read (and rendered: its querysets are read then) on the read replica when one
    is configured (recsys_experiments/db.py)."""
    with reading():
        return _results_page(model_admin, request, experiment).render()


def _results_page(model_admin, request, experiment):
    results, chosen = _results(request, experiment)
    # What each metric counts, for the table (like / impression, sum of purchase per user).
    labels = {
        metric.key: metric.counts_label
        for metric in Metric.objects.filter(key__in={row["metric"] for row in results["metrics"]})
    }
    results = {
        **results,
        "metrics": [{**row, "counts": labels.get(row["metric"], "")} for row in results["metrics"]],
    }
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
                        title=f"Likes per impression (daily, descriptive), last {days} days",
                        labels=short,
                        series=series["like_rate"],
                        y_format=lambda v: f"{v:.0%}",
                    )
                ),
            }
        )
    forest = mark_safe(  # noqa: S308 - forest_plot escapes every label
        forest_plot(
            title="Relative lift vs control, 95% "
            + ("always-valid " if results["inference"] == "sequential" else "")
            + "CI (per metric and variant)",
            rows=[
                (f"{row['metric']} · {row['variant']}", *_relative(row))
                for row in results["metrics"]
            ],
        )
    )
    return TemplateResponse(
        request,
        "admin/recsys_experiments/experiment/results.html",
        model_admin.page_context(
            request,
            experiment,
            title=f"Results: {experiment.key}",
            counts=experiment_assignment_counts(experiment),
            results=results,
            chosen=chosen,
            charts=charts,
            forest=forest,
            chart_data=chart_data,
            breakdown=_breakdown(request, experiment, results, chosen),
            audit=AuditEntry.objects.filter(experiment=experiment).select_related(
                "actor", "subject_user"
            )[:50],
            variants_json=json.dumps(experiment.variants, indent=2),
        ),
    )
