"""Experiment alerts (issue 16 §5): a sample ratio mismatch or a failed guardrail of an ACTIVE
experiment, judged by its results (telemetry/results/analysis.experiment_results) over its
latest phase's whole run, with the experiment's own guardrails. Joined to the telemetry
alerts by `manage.py telemetry_health`, GET /api/v1/admin/telemetry/health and the
diagnostics page.

Cost: one results computation per active experiment (drafts and ended experiments are never
read), each over its latest phase only.
"""

from __future__ import annotations

from recsys_experiments.lib.guardrails import FAILED, LIFT_LIMITS
from recsys_experiments.models import Experiment, ExperimentStatus
from telemetry.selectors import telemetry_health

from .analysis import experiment_results

SRM = "sample_ratio_mismatch"
GUARDRAIL = "guardrail"


def _limit(guardrail: dict) -> tuple[str, float]:
    for name in (*LIFT_LIMITS, "max_share"):
        if name in guardrail:
            return name, guardrail[name]
    return "", 0.0


def _srm_alert(experiment: Experiment, srm: dict) -> dict:
    users = " / ".join(f"{name} {count}" for name, count in srm["users"].items())
    weights = " / ".join(f"{weight:g}" for weight in srm["weights"].values())
    return {
        "experiment": experiment.key,
        "alert": SRM,
        "phase": srm["phase"],
        "value": srm["p_value"],
        "message": (
            f"{experiment.key}: sample ratio mismatch in phase {srm['phase']} "
            f"(p = {srm['p_value']:.3g}; users {users} against weights {weights})"
        ),
    }


def _guardrail_alert(experiment: Experiment, phase: int | None, result: dict) -> dict:
    limit, threshold = _limit(result)
    where = f" ({result['variant']})" if result["variant"] else ""
    interval = (
        f" [{result['ci_low']:.4g}, {result['ci_high']:.4g}]"
        if result["ci_low"] is not None
        else ""
    )
    return {
        "experiment": experiment.key,
        "alert": GUARDRAIL,
        "phase": phase,
        "metric": result["metric"],
        "variant": result["variant"],
        "limit": limit,
        "threshold": threshold,
        "value": result["value"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
        "message": (
            f"{experiment.key}: guardrail {result['metric']}{where} {limit} {threshold:g} "
            f"breached in phase {phase}: value {result['value']:.4g}{interval}"
        ),
    }


def experiment_alerts() -> list[dict]:
    """The alerts of every active experiment, by key: its SRM flag, then each failed guardrail
    (the experiment's own; "not enough data" is not an alert)."""
    alerts = []
    for experiment in Experiment.objects.filter(status=ExperimentStatus.ACTIVE).order_by("key"):
        results = experiment_results(experiment)
        phase = results["phase"]["number"] if results["phase"] else None
        if results["srm"]["flagged"]:
            alerts.append(_srm_alert(experiment, results["srm"]))
        alerts.extend(
            _guardrail_alert(experiment, phase, result)
            for result in results["guardrails"]
            if result["status"] == FAILED
        )
    return alerts


def health_with_experiment_alerts(*, days: int = 7) -> dict:
    """telemetry_health plus `experiment_alerts`; healthy only when neither has an alert."""
    health = telemetry_health(days=days)
    alerts = experiment_alerts()
    return {**health, "experiment_alerts": alerts, "healthy": health["healthy"] and not alerts}
