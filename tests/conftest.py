import pytest
from rest_framework.test import APIClient

from tests.factories.users import UserFactory


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Factories hash a password per user; PBKDF2 would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, is_superuser=True)
