from recsys_experiments.services.assignments import assignment_override
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory


def test_me_experiments_lists_only_my_running_assignments(api_client, db):
    me, other = UserFactory(), UserFactory()
    running = ActiveExperimentFactory(key="running")
    draft = ExperimentFactory(key="draft_one")
    for experiment in (running, draft):
        assignment_override(
            experiment=experiment, user=me, variant="treatment", actor=None, source="test"
        )
    assignment_override(
        experiment=running, user=other, variant="control", actor=None, source="test"
    )
    api_client.force_authenticate(me)

    body = api_client.get("/api/v1/me/experiments").json()

    assert [
        (e["experiment_key"], e["variant"], e["assignment_mode"]) for e in body["experiments"]
    ] == [("running", "treatment", "manual")]
