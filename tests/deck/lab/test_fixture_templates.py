"""The customer-shape templates (docs/fixtures/templates/): each loads with its history, the
committed files are what the seeded generator writes, and the sample-size notes in
docs/fixtures.md are what the generator computes."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from deck.lab.fixtures import load_fixture_file
from telemetry.models import Conversion, Impression, Outcome

DOCS = Path(__file__).parents[3] / "docs"
TEMPLATES = DOCS / "fixtures" / "templates"


def generator():
    spec = importlib.util.spec_from_file_location("templates_generate", TEMPLATES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["small_catalog", "long_tail", "cold_start"])
def test_each_template_loads_with_its_history(db, name, tmp_path):
    path = TEMPLATES / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    events = [event for user in data["users"] for event in user.get("events", [])]

    counts = load_fixture_file(path, evidence_dir=tmp_path)

    kinds = {kind: sum(e["kind"] == kind for e in events) for kind in ("impression", "outcome")}
    assert Impression.objects.count() == kinds["impression"] > 0
    assert Outcome.objects.count() == kinds["outcome"] > 0
    assert Conversion.objects.count() == sum(e["kind"] == "conversion" for e in events) > 0
    assert counts["users"] == len(data["users"])
    # Every impression after its user's assignment is tagged with the template's experiment.
    tagged = Impression.objects.filter(request_context__experiments__has_key=f"{name}_blend")
    assert tagged.count() == kinds["impression"]


def test_the_cold_start_template_is_mostly_users_without_history():
    data = yaml.safe_load((TEMPLATES / "cold_start.yaml").read_text())
    without = sum(not user.get("events") for user in data["users"])

    assert without / len(data["users"]) > 0.8


def test_the_long_tail_template_has_zipf_popularity():
    catalog = yaml.safe_load((TEMPLATES / "long_tail.yaml").read_text())["catalog"]
    popularity = [item["popularity"] for item in catalog]

    # Zipf s=1.1: the top 10% of titles hold well over half of the popularity mass.
    assert sum(popularity[: len(popularity) // 10]) / sum(popularity) > 0.6
    assert popularity == sorted(popularity, reverse=True)


def test_the_committed_templates_are_what_the_seeded_generator_writes(tmp_path):
    written = generator().write_all(tmp_path)

    for path in written:
        assert path.read_text() == (TEMPLATES / path.name).read_text(), path.name


def test_the_sample_size_notes_in_the_docs_are_computed():
    table = generator().notes_table()

    assert table in (DOCS / "fixtures.md").read_text()
