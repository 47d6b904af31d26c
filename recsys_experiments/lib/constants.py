"""The shared lists, each written once. The model choices, the serializer and command choices
and the validation rules derive from these; the database holds the same lists as CHECK
constraints and in its views, and tests/recsys_experiments/test_constants.py compares them.

Each list is a {value: label} mapping (the label is what the admin shows); the tuple of values
is what the rules check against.
"""

from __future__ import annotations

import re

EXPERIMENT_STATUS_LABELS = {"draft": "Draft", "active": "Active", "ended": "Ended"}
EXPERIMENT_STATUSES = tuple(EXPERIMENT_STATUS_LABELS)
DRAFT, ACTIVE, ENDED = EXPERIMENT_STATUSES

PLATFORM_LABELS = {"ios": "iOS", "android": "Android", "web": "Web"}
PLATFORMS = tuple(PLATFORM_LABELS)

ASSIGNMENT_MODE_LABELS = {"auto": "Auto (hashed)", "manual": "Manual override"}
ASSIGNMENT_MODES = tuple(ASSIGNMENT_MODE_LABELS)
# How the API reports an active experiment the user has no row in yet (not stored).
UNASSIGNED = "unassigned"

OUTCOME_TYPE_LABELS = {
    "like": "Like",
    "dislike": "Dislike",
    "watchlist": "Watchlist",
    "rating": "Rating",
    "detail_open": "Detail open",
}
OUTCOME_TYPES = tuple(OUTCOME_TYPE_LABELS)
# Outcomes after which an item is never served to that user again (the deck SQL function
# filters on the same list).
ACTED_UPON_OUTCOME_TYPES = ("like", "dislike", "watchlist", "rating")

# An experiment key and a salt. The database CHECKs use the `^...$` form (in PostgreSQL `$`
# matches only at the very end); Python uses \A ... \Z, since its `$` also matches before a
# trailing newline ("abc\n").
KEY_BODY = "[a-z0-9][a-z0-9_]{1,62}"
KEY_PATTERN = f"^{KEY_BODY}$"
KEY_RE = re.compile(rf"\A{KEY_BODY}\Z")
SALT_BODY = "[!-~]{1,64}"
SALT_PATTERN = f"^{SALT_BODY}$"
SALT_RE = re.compile(rf"\A{SALT_BODY}\Z")

# The metric catalogue (rec_metrics; docs/recsys-experiments.md, "Metrics and inference").
METRIC_KIND_LABELS = {
    "ratio": "Ratio: numerator events / denominator events (delta method by user)",
    "mean": "Mean per exposed user (Welch's t-test)",
    "proportion": "Share of exposed users with at least one event",
}
METRIC_KINDS = tuple(METRIC_KIND_LABELS)
RATIO, MEAN, PROPORTION = METRIC_KINDS
# What a metric counts: an impression, an outcome of one type (joined to its impression), or
# a conversion of one name (rec_conversions.metric_name, the metric's numerator_name or
# denominator_name), attributed by its experiments tag.
IMPRESSION = "impression"
CONVERSION = "conversion"
METRIC_EVENT_LABELS = {
    IMPRESSION: "Impression",
    **OUTCOME_TYPE_LABELS,
    CONVERSION: "Conversion (named: recorded by the app)",
}
METRIC_EVENTS = tuple(METRIC_EVENT_LABELS)
# Outcome types that carry a value (rec_outcomes_value_check): only these can be summed.
VALUED_OUTCOME_TYPES = ("rating",)
# The metric events whose values a mean metric can sum or average.
VALUED_METRIC_EVENTS = (*VALUED_OUTCOME_TYPES, CONVERSION)
# A mean metric's per-user value: the number of events, the sum of their values, or the mean
# of their values (users without such an event are then left out).
METRIC_VALUE_LABELS = {
    "count": "Number of events per user",
    "sum": "Sum of the event values per user",
    "mean": "Mean of the event values per user (users with at least one event)",
}
METRIC_VALUES = tuple(METRIC_VALUE_LABELS)

# The default catalogue's keys (telemetry/migrations/0009_default_metrics.py seeds these rows;
# tests/recsys_experiments/test_constants.py compares). Guardrails may name only these (the lib
# layer cannot read rec_metrics; a metric added to the catalogue later joins this list here).
CATALOGUE_METRICS = (
    "like_rate",
    "dislike_rate",
    "detail_open_rate",
    "watchlist_rate",
    "likes_per_user",
    "mean_rating",
    "users_with_like",
)
