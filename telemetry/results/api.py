"""The metrics endpoint: /api/v1/admin/experiments/<key>/metrics. Staff only, with the same
permission as the other admin experiment endpoints."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response

from recsys_experiments.api.admin_experiments import TAGS, AdminExperimentApi
from recsys_experiments.api.errors import days_param
from recsys_experiments.db import reading
from recsys_experiments.lib.constants import METRIC_KINDS
from recsys_experiments.lib.errors import InvalidInput
from recsys_experiments.lib.statistics import CORRECTIONS
from recsys_experiments.selectors import experiment_get

from .analysis import experiment_results, parse_date, parse_mde, parse_phase
from .selectors import BREAKDOWN_VIEWS, experiment_daily_breakdown, parse_breakdown_view


def correction_param(request) -> str:
    value = request.query_params.get("correction", "holm")
    if value not in CORRECTIONS:
        raise InvalidInput({"correction": [f"must be one of {', '.join(CORRECTIONS)}"]})
    return value


METRIC_ROW = inline_serializer(
    "MetricRow",
    {
        "metric": serializers.CharField(),
        "kind": serializers.ChoiceField(choices=list(METRIC_KINDS)),
        "variant": serializers.CharField(),
        "control_value": serializers.FloatField(allow_null=True),
        "value": serializers.FloatField(allow_null=True),
        "abs_lift": serializers.FloatField(allow_null=True),
        "abs_ci_low": serializers.FloatField(allow_null=True),
        "abs_ci_high": serializers.FloatField(allow_null=True),
        "rel_lift": serializers.FloatField(allow_null=True),
        "rel_ci_low": serializers.FloatField(allow_null=True),
        "rel_ci_high": serializers.FloatField(allow_null=True),
        "p_value": serializers.FloatField(allow_null=True, help_text="raw, unadjusted"),
        "p_adjusted": serializers.FloatField(
            allow_null=True, help_text="corrected across metrics x variants (`correction`)"
        ),
        "sequential": serializers.BooleanField(
            help_text="always-valid (sequential) CI and p-value; false: fixed-horizon"
        ),
        "std_error": serializers.FloatField(
            allow_null=True, help_text="standard error of abs_lift"
        ),
        "cuped": serializers.BooleanField(
            help_text="adjusted by the users' pre-period values (RESULTS_CUPED_DAYS > 0)"
        ),
        "variance_reduction": serializers.FloatField(
            allow_null=True,
            help_text="CUPED: 1 - Var(adjusted lift) / Var(plain lift); null without pre data",
        ),
        "reason": serializers.CharField(required=False, help_text="why a value is missing"),
    },
    many=True,
)

BREAKDOWN = inline_serializer(
    "DailyBreakdown",
    {
        "view": serializers.ChoiceField(choices=list(BREAKDOWN_VIEWS)),
        "sql_view": serializers.CharField(help_text="the SQL view the rows come from"),
        "category": serializers.CharField(help_text="source, position or genre"),
        "from": serializers.DateField(allow_null=True, help_text="first UTC day (null: empty)"),
        "to": serializers.DateField(allow_null=True, help_text="last UTC day, inclusive"),
        "rows": serializers.ListField(
            child=serializers.DictField(),
            help_text="the view's rows for this experiment: day, variant, the category, "
            "impressions, users, likes, dislikes, watchlists, ratings, detail_opens, like_rate "
            "(and dislike_rate for source, detail_open_rate for position)",
        ),
        "totals": serializers.ListField(
            child=serializers.DictField(),
            help_text="per variant and category, the counts summed over the days and "
            "like_rate = likes / impressions of the sums",
        ),
    },
    required=False,
)


class ExperimentMetricsApi(AdminExperimentApi):
    """Per-variant exposure and conversion of the clean population, lift versus control with
    95% CI and p-value, the excluded users, sample ratio mismatch of the phase and guardrails.
    The window is the phase's run (default: the latest phase, from its start to its end or
    now), narrowed by `days` (the last N UTC days ending at the phase's end) and `from`/`to`
    (UTC dates, inclusive)."""

    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter(
                "phase", int, required=False, description="phase number (default the latest)"
            ),
            OpenApiParameter(
                "from", str, required=False, description="first UTC day, YYYY-MM-DD (inclusive)"
            ),
            OpenApiParameter(
                "to", str, required=False, description="last UTC day, YYYY-MM-DD (inclusive)"
            ),
            OpenApiParameter(
                "correction",
                str,
                enum=list(CORRECTIONS),
                required=False,
                description="multiple-testing correction of p_adjusted (default holm)",
            ),
            OpenApiParameter(
                "days",
                int,
                required=False,
                description="the last N UTC days of the phase, ending at its end (1-366)",
            ),
            OpenApiParameter(
                "view",
                str,
                enum=list(BREAKDOWN_VIEWS),
                required=False,
                description="adds `breakdown`: that daily view (rec_variant_<view>_daily_"
                "metrics_v1) per variant over the whole UTC days of the window",
            ),
            OpenApiParameter(
                "mde",
                float,
                required=False,
                description="relative minimum detectable effect for the `power` duration "
                "estimate, e.g. 0.03 (default settings RESULTS_POWER_MDE)",
            ),
        ],
        responses={
            200: inline_serializer(
                "ExperimentMetrics",
                {
                    "experiment": serializers.CharField(),
                    "days": serializers.IntegerField(allow_null=True),
                    "window": serializers.DictField(),
                    "phase": serializers.DictField(allow_null=True),
                    "phases": serializers.ListField(child=serializers.DictField()),
                    "control": serializers.CharField(),
                    "srm": serializers.DictField(),
                    "excluded": serializers.DictField(child=serializers.IntegerField()),
                    "manual": serializers.ListField(child=serializers.DictField()),
                    "variants": serializers.ListField(child=serializers.DictField()),
                    "comparisons": serializers.ListField(child=serializers.DictField()),
                    "primary_metric": serializers.CharField(allow_null=True),
                    "correction": serializers.ChoiceField(choices=list(CORRECTIONS)),
                    "inference": serializers.ChoiceField(
                        choices=["sequential", "fixed"],
                        help_text="the experiment's sequential_testing choice",
                    ),
                    "sequential_tuning": serializers.FloatField(
                        allow_null=True, help_text="n* of the confidence sequence"
                    ),
                    "metrics": METRIC_ROW,
                    "guardrails": serializers.ListField(child=serializers.DictField()),
                    "guardrails_passed": serializers.BooleanField(),
                    "power": serializers.DictField(
                        help_text="primary metric: MDE now and days to reach `mde` "
                        "(fixed-horizon, 80% power, alpha 0.05 two-sided)"
                    ),
                    "ranking": serializers.ListField(
                        child=serializers.DictField(),
                        help_text="ranking provenance seen in the window: one row per "
                        "(variant, profile, profile_id, version, knobs_hash) with its "
                        "impressions (nulls: recorded before provenance existed)",
                    ),
                    "breakdown": BREAKDOWN,
                },
            ),
            # The error shape is added by recsys_experiments/api/schema.py.
            400: OpenApiResponse(
                description="Invalid input: `errors` names the bad parameter: `phase` (not a "
                "number, or no such phase), `from` or `to` (not a real YYYY-MM-DD date, or "
                "`from` after `to`), `days` (not 1-366), `correction` (not holm or bh), "
                "`view` (not source, position or genre), `mde` (not a number in (0, 10])."
            ),
            404: OpenApiResponse(description="No such experiment."),
        },
    )
    def get(self, request, key):
        params = request.query_params
        phase = parse_phase(params.get("phase"))
        date_from = parse_date(params.get("from"), "from")
        date_to = parse_date(params.get("to"), "to")
        days = days_param(request) if "days" in params else None
        view = parse_breakdown_view(params.get("view"))
        mde = parse_mde(params.get("mde"))
        correction = correction_param(request)
        experiment = experiment_get(key)
        with reading():  # the read replica, when configured (recsys_experiments/db.py)
            results = experiment_results(
                experiment,
                phase=phase,
                date_from=date_from,
                date_to=date_to,
                days=days,
                correction=correction,
                mde=mde,
            )
            if view is not None:
                results["breakdown"] = experiment_daily_breakdown(
                    experiment, view, window=results["window"]
                )
        return Response(results)
