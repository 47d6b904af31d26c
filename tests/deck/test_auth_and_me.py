from recsys_experiments.services.assignments import assignment_override
from tests.factories.experiments import ActiveExperimentFactory, ExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields


def test_token_for_username_or_email_and_password(api_client, db):
    user = UserFactory(username="mobile", email="Mobile@Example.com")

    by_name = api_client.post(
        "/api/v1/auth/token",
        {"username": "mobile", "password": "correct horse battery staple"},
        format="json",
    )
    by_email = api_client.post(
        "/api/v1/auth/token",
        {"username": "mobile@example.com", "password": "correct horse battery staple"},
        format="json",
    )

    assert by_name.status_code == by_email.status_code == 200
    assert by_name.json()["token"] == by_email.json()["token"] == user.auth_token.key


def test_wrong_password_or_missing_field_is_400(api_client, db):
    UserFactory(username="mobile")

    wrong = api_client.post(
        "/api/v1/auth/token", {"username": "mobile", "password": "nope"}, format="json"
    )
    missing = api_client.post("/api/v1/auth/token", {"username": "mobile"}, format="json")

    assert wrong.status_code == 400 and "password" in api_error_fields(wrong)
    assert missing.status_code == 400 and "password" in api_error_fields(missing)


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
