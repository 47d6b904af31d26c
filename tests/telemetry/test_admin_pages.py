"""The Diagnostics page telemetry adds to the admin (telemetry/admin_pages.py)."""

import uuid

from django.db import connection
from django.urls import reverse

from tests.factories.catalog import MediaItemFactory
from tests.factories.users import UserFactory


def test_diagnostics_is_green_when_healthy_and_red_when_tagging_breaks(admin):
    page = reverse("admin:recsys_diagnostics")
    assert 'class="recsys-status ok"' in admin.get(page).content.decode()

    user, item = UserFactory(), MediaItemFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "insert into rec_impressions (user_id, rec_request_id, media_item_id, position, "
            "source, request_context) values (%s, %s, %s, 1, 'cf', '{}')",
            [user.pk, uuid.uuid4(), item.pk],
        )
    broken = admin.get(page).content.decode()

    assert 'class="recsys-status bad"' in broken and "untagged_impressions" in broken
