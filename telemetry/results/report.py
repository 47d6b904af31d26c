"""The experiment report as readable text (for `experiment_report` and `simulate`)."""

from __future__ import annotations


def _pct(value) -> str:
    return "—" if value is None else f"{value:+.2%}"


def _rate(value) -> str:
    return "—" if value is None else f"{value:.2%}"


def _p(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def report_lines(results: dict) -> list[str]:
    phase, window = results["phase"], results["window"]
    lines = [
        f"experiment {results['experiment']}: "
        + (
            f"phase {phase['number']} of {len(results['phases'])}, "
            f"window {window['from'][:16]} .. {window['to'][:16]} UTC"
            if phase
            else "not started"
        )
        + f", control = {results['control']}"
    ]
    if phase:
        weights = ", ".join(f"{w['name']} {w['weight']:g}" for w in phase["weights"])
        lines.append(f"phase weights: {weights}")
    excluded = results["excluded"]
    manual = ", ".join(f"{row['variant']} {row['users']}" for row in results["manual"])
    lines.append(
        f"excluded users: manual {excluded['manual']} ({manual}), "
        f"multiple variants {excluded['multiple_variants']}, "
        f"first exposed before the phase {excluded['before_phase']}"
    )
    srm = results["srm"]
    lines.append(
        "sample ratio: "
        + (
            "not enough data"
            if srm["p_value"] is None
            else f"p = {srm['p_value']:.4g}"
            + (
                "  ** SAMPLE RATIO MISMATCH: do not trust these results **"
                if srm["flagged"]
                else ""
            )
        )
    )
    lines.append("")
    lines.append(
        f"{'variant':16} {'exposed':>8} {'impr.':>8} {'like':>8} {'dislike':>8} {'rating':>7}"
    )
    for variant in results["variants"]:
        outcomes = variant["outcomes"]
        mean = variant["mean_rating"]
        lines.append(
            f"{variant['variant']:16} {variant['exposed_users']:>8} {variant['impressions']:>8} "
            f"{_rate(outcomes['like']['rate']):>8} {_rate(outcomes['dislike']['rate']):>8} "
            f"{'—' if mean is None else f'{mean:.2f}':>7}"
        )
    lines.append("")
    lines.append(
        f"{'variant':16} {'outcome':12} {'control':>8} {'rate':>8} {'abs lift':>9} "
        f"{'rel lift':>9} {'95% CI':>21} {'p':>7}"
    )
    for row in results["comparisons"]:
        ci = "—" if row["ci_low"] is None else f"[{row['ci_low']:+.2%}, {row['ci_high']:+.2%}]"
        lines.append(
            f"{row['variant']:16} {row['outcome_type']:12} {_rate(row['control_rate']):>8} "
            f"{_rate(row['rate']):>8} {_pct(row['abs_lift']):>9} {_pct(row['rel_lift']):>9} "
            f"{ci:>21} {_p(row['p_value']):>7}"
        )
    lines += metric_lines(results)
    lines += power_lines(results)
    lines += ranking_lines(results)
    if results["guardrails"]:
        lines.append("")
        for guardrail in results["guardrails"]:
            lines.append(guardrail_line(guardrail))
    return lines


def guardrail_line(guardrail: dict) -> str:
    """One guardrail result: its limit, the lift (or share) and its 95% CI, and the status
    (ok, FAILED, or "not enough data" with the reason)."""
    limit = ", ".join(f"{k} {v}" for k, v in guardrail.items() if k.startswith("max_"))
    where = f" ({guardrail['variant']})" if guardrail["variant"] else ""
    where += " [file]" if guardrail.get("source") == "file" else ""
    value = "—" if guardrail["value"] is None else f"{guardrail['value']:+.4f}"
    ci = ""
    if guardrail.get("ci_low") is not None:
        ci = f" CI [{guardrail['ci_low']:+.4f}, {guardrail['ci_high']:+.4f}]"
    status = guardrail["status"]
    verdict = {"passed": "ok", "failed": "FAILED"}.get(status, status)
    if status == "not enough data" and guardrail.get("reason"):
        verdict += f" ({guardrail['reason']})"
    return f"guardrail {guardrail['metric']}{where}: {limit}: value {value}{ci}: {verdict}"


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def _interval(low, high, percent: bool = False) -> str:
    if low is None or high is None:
        return "—"
    return f"[{low:+.2%}, {high:+.2%}]" if percent else f"[{low:+.4g}, {high:+.4g}]"


def _reduction(row: dict) -> str:
    """CUPED's variance reduction: "off" (RESULTS_CUPED_DAYS = 0), "—" (no pre-period data)."""
    if not row.get("cuped"):
        return "off"
    value = row.get("variance_reduction")
    return "—" if value is None else f"{value:.0%}"


def metric_lines(results: dict) -> list[str]:
    """The catalogue metrics: value per variant, absolute and relative lift with CIs, raw and
    adjusted p (the primary metric is judged on the raw one), and the variance reduction CUPED
    achieved (the values, lifts and p-values are then the adjusted ones)."""
    if not results.get("metrics"):
        return []
    primary = results.get("primary_metric")
    lines = [
        "",
        inference_line(results),
        f"metrics (p adjusted by {results['correction']} across metrics x variants"
        + (f"; primary: {primary}, judged on its raw p" if primary else "")
        + "; CUPED = variance reduction by the users' pre-period values)",
        f"{'metric':18} {'variant':14} {'control':>9} {'value':>9} {'abs lift 95% CI':>23} "
        f"{'rel lift 95% CI':>19} {'p':>7} {'p adj.':>7} {'CUPED':>6}",
    ]
    for row in results["metrics"]:
        name = ("* " if row["metric"] == primary else "") + row["metric"]
        lines.append(
            f"{name:18} {row['variant']:14} {_number(row['control_value']):>9} "
            f"{_number(row['value']):>9} "
            f"{_interval(row['abs_ci_low'], row['abs_ci_high']):>23} "
            f"{_interval(row['rel_ci_low'], row['rel_ci_high'], percent=True):>19} "
            f"{_p(row['p_value']):>7} {_p(row['p_adjusted']):>7} {_reduction(row):>6}"
            + (f"  ({row['reason']})" if row.get("reason") else "")
        )
    return lines


def inference_line(results: dict) -> str:
    """Which intervals and p-values the metric rows hold."""
    if results.get("inference") == "sequential":
        return (
            "inference: sequential (always-valid CIs and p-values, safe to check at every look; "
            f"tuned for n* = {results['sequential_tuning']:g} users)"
        )
    return "inference: fixed-horizon (valid when read once, at the planned end)"


def _days(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def power_lines(results: dict) -> list[str]:
    """The primary metric's MDE now and the days to reach the target MDE."""
    power = results.get("power")
    if not power:
        return []
    head = f"power ({power['method']}, {power['power']:.0%} power, alpha {power['alpha']:g}): "
    if power["metric"] is None:
        return ["", head + (power.get("reason") or "no primary metric")]
    arrivals = "—" if power["daily_users"] is None else f"{power['daily_users']:.1f}"
    lines = [
        "",
        head + f"{power['metric']}, {power['exposed_users']} users in "
        f"{power['elapsed_days']:.1f} days ({arrivals} per day); target MDE "
        f"{power['target_mde_rel']:.2%} relative",
    ]
    for row in power["comparisons"]:
        mde = (
            "—"
            if row["mde_abs"] is None
            else f"{row['mde_abs']:.4g}"
            + ("" if row["mde_rel"] is None else f" ({row['mde_rel']:.2%} relative)")
        )
        line = f"  {row['variant']}: MDE now {mde}"
        if row["days_needed"] is not None:
            line += (
                f"; {row['users_needed']} users, {_days(row['days_needed'])} days in all "
                f"({_days(row['days_remaining'])} to go) for the target"
            )
        if row.get("reason"):
            line += f" ({row['reason']})"
        lines.append(line)
    return lines


def ranking_lines(results: dict) -> list[str]:
    """Which ranking profile, version and final knobs (hash) served each variant in the
    window, with impression counts (the deck's provenance, docs/deck.md)."""
    if not results.get("ranking"):
        return []
    lines = ["", f"{'ranking':16} {'profile':20} {'version':>7} {'knobs hash':14} {'impr.':>8}"]
    for row in results["ranking"]:
        profile = row["profile"] or "—"
        if row["profile_id"] is not None:
            profile += f" (#{row['profile_id']})"
        knobs = (row["knobs_hash"] or "not recorded")[:12]
        version = "—" if row["version"] is None else str(row["version"])
        lines.append(
            f"{row['variant']:16} {profile:20} {version:>7} {knobs:14} {row['impressions']:>8}"
        )
    return lines
