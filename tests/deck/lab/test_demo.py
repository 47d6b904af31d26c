"""seed_demo: believable demo data through the real deck and outcome paths."""

from django.core.management import call_command

from recsys_experiments.models import Experiment
from telemetry.models import Impression, Outcome


def test_seed_demo_is_tagged_backdated_and_idempotent(db):
    call_command("seed_demo", items=80, users=12, days=2, verbosity=0)
    counts = (Impression.objects.count(), Outcome.objects.count())

    call_command("seed_demo", items=80, users=12, days=2, verbosity=0)

    assert (Impression.objects.count(), Outcome.objects.count()) == counts
    assert counts[0] > 0 and counts[1] > 0
    assert set(Experiment.objects.filter(status="active").values_list("key", flat=True)) == {
        "swipe_blend_test",
        "diversity_cap_v1",
    }
    assert not Impression.objects.filter(request_context__experiments={}).exists()
    days = {d.date() for d in Impression.objects.values_list("created_at", flat=True)}
    assert len(days) == 3
