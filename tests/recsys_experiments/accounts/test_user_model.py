import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError

from tests.factories.users import UserFactory


def test_user_primary_key_is_a_uuid(db):
    user = UserFactory()

    assert get_user_model()._meta.pk.get_internal_type() == "UUIDField"
    assert isinstance(user.pk, uuid.UUID)
    assert get_user_model().objects.get(pk=str(user.pk)) == user


def test_two_users_cannot_share_an_email_in_any_case(db):
    UserFactory(username="first", email="Same@Example.com")

    with pytest.raises(IntegrityError):
        UserFactory(username="second", email="same@example.com")


def test_users_without_email_are_allowed_side_by_side(db):
    UserFactory(username="a", email="")
    UserFactory(username="b", email="")

    assert get_user_model().objects.filter(email="").count() == 2
