"""Customer guardrail files: one YAML file per customer, read by `guardrails check`,
`experiment_report --guardrails` and `simulate --guardrails` (docs/recsys-experiments.md,
"Guardrail files").

    customer: media_catalog           # a slug naming the customer
    description: ...                  # optional free text
    guardrails:                       # judged on every experiment (lib/guardrails format)
      - {metric: like_rate, max_drop: 0.02}
    experiments:                      # optional, per experiment key: its own limits
      swipe_blend_test:               # (same metric and limit: replaces the file-wide one;
        - {metric: like_rate, max_drop: 0.05}   #  anything else is added)
    srm: warn                         # fail: a flagged sample ratio mismatch fails the check
    not_enough_data: pass             # fail: a guardrail without data fails the check

The file is untrusted input: it is read with a size limit, must be UTF-8 text without NUL
characters, and is parsed with PyYAML's safe loader refusing anchors and aliases (no
"billion laughs"), duplicate keys and nesting deeper than a guardrail file needs. Every
problem is reported by its path (`guardrails[2].max_drop: must be a number ...`) in one
InvalidInput. Pure: no Django.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .constants import KEY_RE
from .errors import InvalidInput
from .experiment_rules import MAX_GUARDRAILS, Problems
from .guardrails import FAILED, NOT_ENOUGH_DATA, SHARE_METRICS, check_guardrail, evaluate
from .text import path_part, shown, unstorable_text_reason

__all__ = [
    "GuardrailFile",
    "evaluate_on_results",
    "load_guardrail_file",
    "parse_guardrail_file",
    "read_bundle_results",
    "verdict",
]

MAX_FILE_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 32 * 1024 * 1024
MAX_EXPERIMENTS = 200
MAX_DEPTH = 8  # top level > experiments > key > list > guardrail > value is 6
MAX_DESCRIPTION_LENGTH = 2000
CUSTOMER_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
FIELDS = ("customer", "description", "guardrails", "experiments", "srm", "not_enough_data")
SRM_POLICIES = ("fail", "warn")
NOT_ENOUGH_DATA_POLICIES = ("fail", "pass")


@dataclass(frozen=True)
class GuardrailFile:
    customer: str
    guardrails: list[dict]
    experiments: dict[str, list[dict]] = field(default_factory=dict)
    srm: str = "warn"
    not_enough_data: str = "pass"
    description: str = ""
    path: str = ""

    def guardrails_for(self, key: str) -> list[dict]:
        """The file-wide guardrails with the experiment's own entries applied: an entry with
        the same metric and limit replaces the file-wide one (in its place), others are
        added after them."""
        own = {_identity(g): g for g in self.experiments.get(key, [])}
        merged = [own.pop(_identity(g), g) for g in self.guardrails]
        return [dict(g) for g in [*merged, *own.values()]]

    def policy(self) -> dict:
        return {
            "file": self.path,
            "customer": self.customer,
            "srm": self.srm,
            "not_enough_data": self.not_enough_data,
        }


def _identity(guardrail: dict) -> tuple[str, str]:
    [limit] = [k for k in guardrail if k != "metric"]
    return guardrail["metric"], limit


class _Refused(Exception):
    """A YAML construct a guardrail file may not use; the message says which."""


class _Loader(yaml.SafeLoader):
    """The safe loader without anchors, aliases or duplicate keys, and with a depth limit."""

    depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(f"line {event.start_mark.line + 1}: anchors and aliases are not allowed")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(
                    f"line {event.start_mark.line + 1}: nested too deeply "
                    f"(at most {MAX_DEPTH} levels)"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # a list or mapping as a key
                raise _Refused(f"line {key_node.start_mark.line + 1}: a key must be text") from None
            if duplicate:
                raise _Refused(f"line {key_node.start_mark.line + 1}: duplicate key '{shown(key)}'")
        return super().construct_mapping(node, deep=deep)


def _read_text(path: Path, limit: int, what: str) -> str:
    named = shown(str(path), 200)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise InvalidInput({what: [f"{named} is a directory, not a file"]}) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidInput({what: [f"cannot read {named}: {reason}"]}) from None
    if len(data) > limit:
        raise InvalidInput({what: [f"is larger than {limit} bytes"]})
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput({what: [f"is not UTF-8 text (byte {error.start})"]}) from None
    reason = unstorable_text_reason(text)
    if reason:
        raise InvalidInput({what: [reason]})
    return text


def load_guardrail_file(path: str | Path) -> GuardrailFile:
    """Read and validate a guardrail file; InvalidInput naming every problem by its path
    (`file` for the file as a whole)."""
    return parse_guardrail_file(_read_text(Path(path), MAX_FILE_BYTES, "file"), path=str(path))


def parse_guardrail_file(text: str, *, path: str = "") -> GuardrailFile:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise InvalidInput({"file": [f"is larger than {MAX_FILE_BYTES} bytes"]})
    reason = unstorable_text_reason(text)
    if reason:
        raise InvalidInput({"file": [reason]})
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except _Refused as error:
        raise InvalidInput({"file": [str(error)]}) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise InvalidInput({"file": [f"is not valid YAML: {where}{shown(problem)}"]}) from None
    except RecursionError:
        raise InvalidInput({"file": ["is nested too deeply"]}) from None
    return _validate(data, path)


def _guardrail_list(value: Any, where: str, problems: Problems) -> list[dict]:
    if not isinstance(value, list) or len(value) > MAX_GUARDRAILS:
        problems.add(where, f"must be a list of at most {MAX_GUARDRAILS} guardrails")
        return []
    cleaned, seen = [], set()
    for index, guardrail in enumerate(value):
        reasons = list(check_guardrail(guardrail))
        for name, reason in reasons:
            problems.add(f"{where}[{index}]{'.' + path_part(name) if name else ''}", reason)
        if reasons:
            continue
        identity = _identity(guardrail)
        if identity in seen:
            problems.add(f"{where}[{index}]", f"repeats {identity[0]} {identity[1]}")
            continue
        seen.add(identity)
        cleaned.append(dict(guardrail))
    return cleaned


def _choice(data: dict, name: str, choices: tuple[str, ...], problems: Problems) -> str:
    value = data.get(name, choices[-1])
    if value not in choices or not isinstance(value, str):
        problems.add(name, f"must be one of {', '.join(choices)}")
        return choices[-1]
    return value


def _validate(data: Any, path: str) -> GuardrailFile:
    if not isinstance(data, dict):
        raise InvalidInput({"file": ["must be a YAML mapping with customer and guardrails"]})
    problems = Problems()
    for unknown in data:
        if unknown not in FIELDS:
            problems.add(
                path_part(unknown) if isinstance(unknown, str) else shown(unknown),
                f"is not a guardrail file field ({', '.join(FIELDS)})",
            )
    customer = data.get("customer")
    if not isinstance(customer, str) or not CUSTOMER_RE.fullmatch(customer):
        problems.add(
            "customer",
            "must be a slug: 1-63 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit",
        )
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        problems.add("description", f"must be text of at most {MAX_DESCRIPTION_LENGTH} characters")
        description = ""
    if "guardrails" not in data:
        problems.add("guardrails", "is required (a list, may be empty)")
    guardrails = _guardrail_list(data.get("guardrails", []), "guardrails", problems)
    experiments: dict[str, list[dict]] = {}
    given = data.get("experiments", {})
    if given is None:
        given = {}
    if not isinstance(given, dict) or len(given) > MAX_EXPERIMENTS:
        problems.add(
            "experiments",
            f"must be a mapping of at most {MAX_EXPERIMENTS} experiment keys to guardrail lists",
        )
        given = {}
    for key, value in given.items():
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            problems.add(
                f"experiments.{path_part(key) if isinstance(key, str) else shown(key)}",
                "is not an experiment key (2-63 lower-case letters, digits and underscores)",
            )
            continue
        experiments[key] = _guardrail_list(value, f"experiments.{key}", problems)
    srm = _choice(data, "srm", SRM_POLICIES, problems)
    not_enough_data = _choice(data, "not_enough_data", NOT_ENOUGH_DATA_POLICIES, problems)
    problems.raise_if_any()
    if not guardrails and not any(experiments.values()):
        raise InvalidInput({"guardrails": ["the file declares no guardrail at all"]})
    return GuardrailFile(
        customer=customer,
        guardrails=guardrails,
        experiments=experiments,
        srm=srm,
        not_enough_data=not_enough_data,
        description=description,
        path=path,
    )


# Report bundles: a directory holding results.json whose "results" is experiment_results(...).
RESULTS_KEYS = {"experiment": str, "control": str, "variants": list, "srm": dict}


def read_bundle_results(directory: str | Path) -> dict:
    """The `results` of a report bundle's results.json; InvalidInput naming the bundle."""
    where = f"--bundle {shown(str(directory), 200)}"
    text = _read_text(Path(directory) / "results.json", MAX_BUNDLE_BYTES, where)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput({where: ["results.json is not valid JSON"]}) from None
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, dict):
        raise InvalidInput({where: ['results.json has no "results" object']})
    for key, kind in RESULTS_KEYS.items():
        if not isinstance(results.get(key), kind):
            raise InvalidInput({where: [f'results.json: "results.{key}" is missing or malformed']})
    for name in ("metrics", "guardrails"):
        rows = results.get(name, [])
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise InvalidInput({where: [f'results.json: "results.{name}" must be a list']})
    if not all(
        isinstance(v, dict) and isinstance(v.get("variant"), str) for v in results["variants"]
    ):
        raise InvalidInput({where: ['results.json: "results.variants" is malformed']})
    return results


def _number(value) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def evaluate_on_results(results: dict, guardrails: list[dict]) -> list[dict]:
    """Judge `guardrails` on a stored results dict (a bundle's): on its metric rows, and for a
    metric it has no row of, on the stored guardrail results of that metric (their lift and
    interval, or share). A metric found in neither is "not enough data"."""
    rows = [
        {
            "metric": row.get("metric"),
            "variant": row.get("variant"),
            "abs_lift": _number(row.get("abs_lift")),
            "abs_ci_low": _number(row.get("abs_ci_low")),
            "abs_ci_high": _number(row.get("abs_ci_high")),
            "reason": row.get("reason") if isinstance(row.get("reason"), str) else None,
        }
        for row in results.get("metrics", [])
    ]
    have = {(row["metric"], row["variant"]) for row in rows}
    health = {}
    for stored in results.get("guardrails", []):
        metric, variant = stored.get("metric"), stored.get("variant")
        if metric in SHARE_METRICS:
            if _number(stored.get("value")) is not None:
                health[SHARE_METRICS[metric]] = stored["value"]
        elif (metric, variant) not in have:
            have.add((metric, variant))
            rows.append(
                {
                    "metric": metric,
                    "variant": variant,
                    "abs_lift": _number(stored.get("value")),
                    "abs_ci_low": _number(stored.get("ci_low")),
                    "abs_ci_high": _number(stored.get("ci_high")),
                    "reason": stored.get("reason")
                    if isinstance(stored.get("reason"), str)
                    else None,
                }
            )
    judged = evaluate(
        guardrails,
        control=results["control"],
        variant_names=[v["variant"] for v in results["variants"]],
        rows=rows,
        health=health,
    )
    for result in judged:
        if result["status"] == NOT_ENOUGH_DATA and result.get("reason") == "no data in the window":
            result["reason"] = "the bundle's results hold no row of this metric"
        elif result["variant"] is None and result["value"] is None:
            result["reason"] = "the bundle's results hold no value of this share"
    return [{**result, "source": "file"} for result in judged]


def verdict(results: dict, policy: GuardrailFile) -> dict:
    """Judge one experiment's results (with the file's guardrails evaluated, `source: file`)
    under the file's policy: failed guardrails always fail; a flagged sample ratio mismatch
    fails with `srm: fail` (else warns); a guardrail without data fails with
    `not_enough_data: fail` (else warns)."""
    mine = [g for g in results.get("guardrails", []) if g.get("source") == "file"]
    failed = [g for g in mine if g["status"] == FAILED]
    unknown = [g for g in mine if g["status"] == NOT_ENOUGH_DATA]
    srm = results.get("srm") or {}
    flagged = bool(srm.get("flagged"))
    failures = [_label(g) for g in failed]
    warnings = []
    if flagged:
        line = f"sample ratio mismatch flagged (p = {srm.get('p_value')})"
        (failures if policy.srm == "fail" else warnings).append(line)
    for g in unknown:
        (failures if policy.not_enough_data == "fail" else warnings).append(
            f"{_label(g)}: not enough data"
        )
    return {
        "passed": not failures,
        "failures": failures,
        "warnings": warnings,
        "srm_flagged": flagged,
    }


def _label(guardrail: dict) -> str:
    limit = ", ".join(f"{k} {v}" for k, v in guardrail.items() if k.startswith("max_"))
    where = f" ({guardrail['variant']})" if guardrail.get("variant") else ""
    return f"{guardrail['metric']}{where} {limit}"
