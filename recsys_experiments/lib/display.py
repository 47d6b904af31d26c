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
