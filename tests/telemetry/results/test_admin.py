"""The admin results page (telemetry/results/admin.py), registered on the experiment admin
by telemetry."""

import json
import uuid

from django.db import connection

from recsys_experiments.services.assignments import assignment_override
from tests.factories.catalog import MediaItemFactory
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import admin_page_url as url


def test_results_page_has_counts_charts_data_and_history(admin):
    experiment = ActiveExperimentFactory()
    user = UserFactory()
    assignment_override(
        experiment=experiment, user=user, variant="treatment", actor=None, source="t"
    )
    item = MediaItemFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context) values (%s, %s, %s, 1, 'cf', %s::jsonb)",
            [
                user.pk,
                uuid.uuid4(),
                item.pk,
                json.dumps({"experiments": {experiment.key: "treatment"}}),
            ],
        )

    response = admin.get(url("experiment_results", experiment))
    page = response.content.decode()

    assert response.status_code == 200
    assert [row["manual"] for row in response.context["counts"]] == [0, 1]
    assert (page.count("<svg") == 4 and 'data-series="treatment"' in page) or "<circle" in page
    assert 'id="recsys-chart-data"' in page
    assert response.context["chart_data"]["last_7_days"]["impressions"]["treatment"][-1] == 1
    assert "Forced variant" in page
