"""`simulate --guardrails FILE` judges a customer's guardrail file on the run (issue 14,
section 4): a planted drop beyond the file's limit exits 1 though the experiment itself
declares no guardrail."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories.catalog import MediaItemFactory


@pytest.fixture
def catalog_items(db):
    return MediaItemFactory.create_batch(60)


def test_simulate_applies_the_guardrail_file(catalog_items, tmp_path):
    guardrails = tmp_path / "acme.yml"
    guardrails.write_text(
        "customer: acme\nguardrails: []\n"
        "experiments:\n  sim_guarded:\n    - {metric: like_rate, max_drop: 0.02}\n"
    )
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(
            "simulate", "--experiment", "sim_guarded", "--users", "200", "--effect", "like=-0.3",
            "--seed", "2", "--guardrails", str(guardrails), "--json",
            stdout=out, stderr=io.StringIO(),
        )  # fmt: skip

    assert raised.value.returncode == 1
    [guardrail] = json.loads(out.getvalue())["results"]["guardrails"]
    assert guardrail["source"] == "file" and guardrail["status"] == "failed"
    assert guardrail["ci_high"] < -0.02


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "sim_x"], "--guardrails {path}: srm: must be one of fail, warn"),
        (
            ["--batch-file", "b.yml"],
            "--guardrails judges one run: not with --batch-file or --from-bundle (a bundle "
            "replays the guardrails it recorded)",
        ),
    ],
)
def test_a_bad_guardrail_file_or_combination_is_exit_2(catalog_items, tmp_path, args, message):
    guardrails = tmp_path / "acme.yml"
    guardrails.write_text("customer: acme\nguardrails: [{metric: like_rate, max_drop: 0.1}]\n")
    if "srm" in message:
        guardrails.write_text(guardrails.read_text() + "srm: sometimes\n")

    with pytest.raises(CommandError) as raised:
        call_command(
            "simulate", *args, "--guardrails", str(guardrails),
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip

    assert raised.value.returncode == 2
    assert str(raised.value) == message.format(path=guardrails)
