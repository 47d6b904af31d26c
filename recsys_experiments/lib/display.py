"""How an experiment is shown to people, the same in the admin and the `experiments` command.

Pure: takes plain values, returns text.
"""

from __future__ import annotations

# The status badge's background (the admin's list, and the editor's header).
STATUS_COLOURS = {"draft": "#6b6b6b", "active": "#2e7d32", "ended": "#8d6e63"}
UNKNOWN_STATUS_COLOUR = "#444"


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, UNKNOWN_STATUS_COLOUR)


def split_summary(variants: list[dict]) -> str:
    """`control 50% · treatment 50%`"""
    return " · ".join(f"{variant['name']} {variant['weight']:.0%}" for variant in variants)


def duration_text(seconds: float) -> str:
    """`3 days`, `5 hours`, `12 minutes`, `less than a minute` (rounded down)."""
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count = int(seconds // size)
        if count >= 1:
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


def schedule_summary(*, status: str, started_at, ended_at, now) -> str:
    """What the schedule means now: `scheduled (starts in 2 days)`, `ends in 5 hours`, or a
    time that has passed but that `experiments tick` has not acted on yet. Empty when there
    is nothing scheduled (or the experiment has ended)."""
    parts = []
    if status in ("draft", "active") and started_at is not None:
        if started_at > now:
            parts.append(
                f"scheduled (starts in {duration_text((started_at - now).total_seconds())})"
            )
        elif status == "draft":
            parts.append(
                f"scheduled start passed {duration_text((now - started_at).total_seconds())} "
                "ago (activates at the next tick)"
            )
    if status in ("draft", "active") and ended_at is not None:
        if ended_at > now:
            parts.append(f"ends in {duration_text((ended_at - now).total_seconds())}")
        else:
            parts.append(
                f"scheduled end passed {duration_text((now - ended_at).total_seconds())} ago "
                "(no longer served; ends at the next tick)"
            )
    return "; ".join(parts)
