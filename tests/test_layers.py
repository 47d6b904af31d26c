"""The apps form a stack and every import points down (docs/architecture.md):

    recsys_experiments.lib  <-  recsys_experiments  <-  telemetry  <-  deck (with deck.lab)

`lib` imports nothing of the project outside itself (and nothing of Django), and no runtime
package imports the development tooling in config/localdb.py. Every import statement of every
module counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("recsys_experiments", "telemetry", "deck")
LIB = "recsys_experiments.lib"
LAYERS = {LIB: 0, "recsys_experiments": 1, "telemetry": 2, "deck": 3}


def layer_of(module: str) -> tuple[str, int] | None:
    for name, rank in sorted(LAYERS.items(), key=lambda item: -len(item[0])):
        if module == name or module.startswith(name + "."):
            return name, rank
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from package import module` names a module too.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def project_modules() -> list[tuple[Path, str]]:
    return [
        (path, module_name(path))
        for package in PACKAGES
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
    ]


def upward_imports() -> list[str]:
    """One line per import statement that breaks a rule."""
    problems = {}
    for path, module in project_modules():
        own = layer_of(module)
        for line, imported in imported_modules(path, module):
            where = f"{path.relative_to(PROJECT_ROOT)}:{line}"
            if imported == "config.localdb" or imported.startswith("config.localdb."):
                problems.setdefault(where, f"{where} imports the development tooling {imported}")
            target = layer_of(imported)
            if target is None:
                if own[0] == LIB and imported.split(".")[0] in {"django", "rest_framework"}:
                    problems.setdefault(where, f"{where}: lib imports {imported}")
                continue
            if own[0] == LIB and target[0] != LIB:
                problems.setdefault(where, f"{where}: lib imports {imported}")
            elif target[1] > own[1]:
                problem = f"{where}: {module} ({own[0]}) imports {imported} ({target[0]})"
                problems.setdefault(where, problem)
    return sorted(problems.values())


def test_every_import_points_down_the_stack():
    problems = upward_imports()

    assert not problems, "imports that point up:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("recsys_experiments.lib.x", "from recsys_experiments.errors import E", "lib imports"),
        ("recsys_experiments.x", "import telemetry.models", "imports telemetry.models"),
        ("recsys_experiments.x", "def f():\n    from deck import demo", "imports deck"),
        ("telemetry.x", "from deck.models import MediaItem", "imports deck.models"),
        ("telemetry.x", "from config.localdb import Cluster", "development tooling"),
        ("recsys_experiments.lib.x", "import django.db", "lib imports django.db"),
    ],
)
def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch, module, source, expected):
    # A planted module in a scratch tree mirroring the packages: the checker must flag it.
    global PROJECT_ROOT
    path = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True)
    path.write_text(source + "\n")
    monkeypatch.setattr(f"{__name__}.PROJECT_ROOT", tmp_path)

    problems = upward_imports()

    assert any(expected in problem for problem in problems), problems
