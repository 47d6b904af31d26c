"""Provenance of reports: the code version, an experiment's full definition, and report
bundles (a directory of JSON/text files with a manifest of their sha256).

    bundle_write(directory, {"results.json": {...}, "summary.md": "..."})  # + manifest.json
    bundle_read(directory) -> {"results.json": b"...", ...}  # checked against the manifest
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.db.migrations.loader import MigrationLoader

from recsys_experiments.lib.errors import DomainError
from recsys_experiments.lib.text import shown
from recsys_experiments.models import Experiment
from recsys_experiments.selectors import experiment_definition

PACKAGE = "recsys-experiments"
MANIFEST = "manifest.json"
FILE_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
METRIC_FIELDS = (
    "key",
    "name",
    "kind",
    "numerator",
    "numerator_name",
    "denominator",
    "denominator_name",
    "value",
    "description",
)


class BundleError(DomainError):
    """A bundle that cannot be read (one line naming the file)."""


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],  # noqa: S607
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def code_version() -> dict:
    """The git commit and whether the work tree is dirty (None without a .git), the package
    version and every app's leaf migration."""
    commit = dirty = None
    if (Path(settings.BASE_DIR) / ".git").exists():
        head = _git("rev-parse", "HEAD")
        commit = head.strip() if head else None
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status.strip())
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = None
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    leaves = {}
    for app_label, name in sorted(graph.leaf_nodes()):
        leaves.setdefault(app_label, []).append(name)
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "package_version": version,
        "migrations": {
            app: names[0] if len(names) == 1 else names for app, names in leaves.items()
        },
    }


def experiment_snapshot(experiment: Experiment) -> dict:
    """Everything needed to recreate the experiment elsewhere: its definition, id, status,
    phases (the current one as `phase`) and linked metrics with their definitions."""
    phases = [
        phase.as_dict() | {"salt": phase.salt} for phase in experiment.phases.order_by("number")
    ]
    links = experiment.experiment_metrics.select_related("metric").order_by("metric__key")
    return {
        **experiment_definition(experiment),
        "id": str(experiment.pk),
        "status": experiment.status,
        "phase": phases[-1] if phases else None,
        "phases": phases,
        "metrics": [
            {
                "is_primary": link.is_primary,
                "metric": {field: getattr(link.metric, field) for field in METRIC_FIELDS},
            }
            for link in links
        ],
    }


def _encode(content: object) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    return (json.dumps(content, indent=2, default=str) + "\n").encode()


def bundle_write(directory: Path, files: dict[str, object]) -> Path:
    """Write `files` ({file name: bytes, text, or data as JSON}) into `directory` and a
    manifest.json with the sha256 of each."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as error:
        raise BundleError(f"cannot write the bundle to {shown(str(directory))}: {error}") from None
    digests = {}
    for name, content in files.items():
        if not FILE_NAME_RE.match(name) or name == MANIFEST:
            raise ValueError(f"not a bundle file name: {name!r}")
        data = _encode(content)
        (directory / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    manifest = {"files": dict(sorted(digests.items()))}
    (directory / MANIFEST).write_bytes(_encode(manifest))
    return directory


def _problem(directory: Path, name: str, reason: str) -> BundleError:
    return BundleError(f"{name} of bundle {shown(str(directory))}: {reason}")


def bundle_read(directory: Path) -> dict[str, bytes]:
    """{file name: content} of a bundle whose every file matches its manifest; BundleError
    names the problem otherwise."""
    directory = Path(directory)
    try:
        found = directory.is_dir()
    except (OSError, ValueError):
        found = False
    if not found:
        raise BundleError(f"{shown(str(directory))}: no such bundle directory")
    try:
        manifest = json.loads((directory / MANIFEST).read_bytes())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError
    except OSError:
        raise _problem(directory, MANIFEST, "missing or unreadable") from None
    except (ValueError, KeyError, TypeError):
        raise _problem(directory, MANIFEST, "not a bundle manifest") from None
    contents = {}
    for name, digest in files.items():
        if not FILE_NAME_RE.match(name):
            raise _problem(directory, MANIFEST, f"bad file name {shown(name)}")
        try:
            data = (directory / name).read_bytes()
        except OSError:
            raise _problem(directory, name, "missing or unreadable") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise _problem(directory, name, f"does not match its sha256 in {MANIFEST}")
        contents[name] = data
    return contents


def bundle_json(contents: dict[str, bytes], name: str, directory: Path):
    """The parsed JSON file `name` of a read bundle (BundleError when absent or not JSON)."""
    if name not in contents:
        raise _problem(directory, name, "missing from the bundle")
    try:
        return json.loads(contents[name])
    except ValueError:
        raise _problem(directory, name, "not valid JSON") from None
