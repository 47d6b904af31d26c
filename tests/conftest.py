import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories.catalog import MediaItemFactory
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


@pytest.fixture
def catalog(db):
    return MediaItemFactory.create_batch(120)


@pytest.fixture
def app_user(db):
    return UserFactory()


@pytest.fixture
def app_client(app_user) -> APIClient:
    """A mobile client authenticated the way the app is: with its token."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=app_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_api_client(api_client, staff_user) -> APIClient:
    """The admin API as a superuser."""
    api_client.force_authenticate(staff_user)
    return api_client
