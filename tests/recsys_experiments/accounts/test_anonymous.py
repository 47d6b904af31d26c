"""Anonymous identities (/api/v1/auth/anonymous), sign-up, and the merge of an install's
anonymous data into an account at login or sign-up."""

import json
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from knox.models import AuthToken
from rest_framework.test import APIClient

from recsys_experiments.accounts.merge import merge_tables, renamed_prefix
from recsys_experiments.accounts.models import IdentityMerge
from recsys_experiments.accounts.services import (
    anonymous_user_get_or_create,
    anonymous_user_merge,
    device_id_digest,
)
from recsys_experiments.db_roles import END_USER_ROLE, acting_as
from recsys_experiments.lib.errors import IllegalTransition
from recsys_experiments.models import Assignment
from recsys_experiments.services.assignments import assignment_override
from telemetry.models import Conversion, Impression, Outcome
from telemetry.services import conversions_record
from tests.factories.experiments import ActiveExperimentFactory
from tests.factories.users import UserFactory
from tests.helpers import api_error_fields

User = get_user_model()
PASSWORD = "correct horse battery staple"
ANONYMOUS_URL = "/api/v1/auth/anonymous"
SIGNUP_URL = "/api/v1/auth/signup"
TOKEN_URL = "/api/v1/auth/token"
DEVICE = "3f2b8c1e-9d4a-4e6f-8b7c-2a1d5e9f0c3b"
OTHER_DEVICE = "Zq8_xY2-vK5mN7pR4tW1sU9hJ3gF6dC0bA"


def anonymous(device_id=None, **extra):
    body = {} if device_id is None else {"device_id": device_id}
    return APIClient().post(ANONYMOUS_URL, body, format="json", **extra)


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def log_in(username, password=PASSWORD, **body):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password, **body}, format="json"
    )


def sign_up(**body):
    return APIClient().post(SIGNUP_URL, body, format="json")


def me(key):
    return with_token(key).get("/api/v1/me/experiments")


def my_variants(user) -> dict[str, tuple[str, str]]:
    return {
        row.experiment.key: (row.variant, row.assignment_mode)
        for row in Assignment.objects.filter(user=user).select_related("experiment")
    }


def deck(key, limit=4) -> dict:
    response = with_token(key).post("/api/v1/deck", {"limit": limit}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def post_outcomes(key, served: dict, event_ids: list[str]):
    items = served["items"]
    outcomes = [
        {
            "event_id": event_id,
            "rec_request_id": served["rec_request_id"],
            "media_item_id": items[index]["media_item_id"],
            "outcome_type": "like",
        }
        for index, event_id in enumerate(event_ids)
    ]
    response = with_token(key).post("/api/v1/outcomes", {"outcomes": outcomes}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == len(event_ids)


# --- POST /api/v1/auth/anonymous ---


def test_an_install_gets_a_token_that_fetches_decks_assignments_and_posts_outcomes(catalog):
    ActiveExperimentFactory(key="onboarding")
    response = anonymous()

    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True and body["expiry"]
    user = User.objects.get(pk=body["user_id"])
    assert user.is_anonymous_install and not user.has_usable_password()
    assert user.device_id_digest is None and not user.is_staff

    served = deck(body["token"])
    post_outcomes(body["token"], served, ["first-like"])

    experiments = me(body["token"]).json()["experiments"]
    assert [e["experiment_key"] for e in experiments] == ["onboarding"]
    assert Impression.objects.filter(user=user).count() == 4
    assert Outcome.objects.filter(user=user).count() == 1


def test_each_call_without_a_device_id_is_a_new_identity(db):
    first, second = anonymous().json(), anonymous().json()

    assert first["user_id"] != second["user_id"]


def test_a_device_id_gets_its_identity_back_and_only_its_digest_is_stored(db):
    first = anonymous(DEVICE)
    again = anonymous(DEVICE)
    other = anonymous(OTHER_DEVICE)

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["created"] is False
    assert first.json()["user_id"] == again.json()["user_id"] != other.json()["user_id"]
    assert first.json()["token"] != again.json()["token"]
    assert me(first.json()["token"]).status_code == me(again.json()["token"]).status_code == 200
    stored = User.objects.get(pk=first.json()["user_id"])
    assert stored.device_id_digest == device_id_digest(DEVICE) != DEVICE
    assert not User.objects.filter(device_id_digest__contains=DEVICE[:8]).exists()


def test_an_anonymous_identity_cannot_log_in_with_a_password(db):
    user = User.objects.get(pk=anonymous(DEVICE).json()["user_id"])

    for password in ("", "!", DEVICE, user.password):
        response = log_in(user.username, password=password or "x")
        assert response.status_code == 400, password


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"device_id": 12345678901234567890123456789012345}, "must be a string"),
        ({"device_id": ["a" * 40]}, "must be a string"),
        ({"device_id": None}, "null"),
        ({"device_id": "short"}, "32 to 128"),
        ({"device_id": "x" * 129}, "32 to 128"),
        ({"device_id": DEVICE[:-1] + "\x00"}, ""),
        ({"device_id": DEVICE.replace("-", " ")}, "32 to 128"),
        ({"device_id": "00000000-0000-0000-0000-000000000000"}, "predictable"),
    ],
)
def test_a_bad_device_id_is_a_400_naming_it(db, body, reason):
    response = APIClient().post(ANONYMOUS_URL, body, format="json")

    assert response.status_code == 400
    errors = api_error_fields(response)
    assert set(errors) == {"device_id"}
    assert reason.lower() in " ".join(errors["device_id"]).lower()
    assert not User.objects.exists()


@pytest.mark.parametrize("body", [[DEVICE], None, DEVICE, 7])
def test_a_body_that_is_not_an_object_is_a_400(db, body):
    response = APIClient().post(ANONYMOUS_URL, json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert set(api_error_fields(response)) == {"body"}
    assert not User.objects.exists()


def test_no_body_at_all_is_an_identity_without_device_id(db):
    response = APIClient().post(ANONYMOUS_URL)

    assert response.status_code == 201


def test_anonymous_identities_are_rate_limited_per_address(db, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "anonymous_address": "3/hour"}
    statuses = [anonymous(REMOTE_ADDR="203.0.113.9").status_code for _ in range(3)]

    fourth = anonymous(DEVICE, REMOTE_ADDR="203.0.113.9")

    assert statuses == [201, 201, 201]
    assert fourth.status_code == 429
    assert fourth.json()["code"] == "throttled" and int(fourth["Retry-After"]) > 0
    assert anonymous(REMOTE_ADDR="198.51.100.4").status_code == 201
    assert User.objects.count() == 4


def test_a_disabled_identity_is_not_handed_out_again(db):
    user_id = anonymous(DEVICE).json()["user_id"]
    User.objects.filter(pk=user_id).update(is_active=False)

    response = anonymous(DEVICE)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db(transaction=True)
def test_the_same_new_device_id_at_once_gives_one_identity():
    barrier = threading.Barrier(2)
    results = []

    def create():
        try:
            barrier.wait()
            with transaction.atomic():
                user, created = anonymous_user_get_or_create(device_id=DEVICE)
                results.append((user.pk, created))
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({pk for pk, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, True]


# --- Merging at login ---


@pytest.fixture
def two_identities(catalog):
    """An install that used the app anonymously, and the account it then logs in to: both
    assigned in `shared` (to different variants), only the install in `install_only`, only
    the account in `account_only`; both sent an outcome with event id `e1`."""
    shared = ActiveExperimentFactory(key="shared")
    install_only = ActiveExperimentFactory(key="install_only")
    install = anonymous(DEVICE).json()
    install_user = User.objects.get(pk=install["user_id"])
    served = deck(install["token"])
    post_outcomes(install["token"], served, ["e1", "e2"])
    install_variant = Assignment.objects.get(experiment=shared, user=install_user).variant
    # Ended before the account's deck, which would otherwise assign it there too.
    type(install_only).objects.filter(pk=install_only.pk).update(status="ended")

    account = UserFactory(username="mobile")
    account_only = ActiveExperimentFactory(key="account_only")
    other_variant = "control" if install_variant == "treatment" else "treatment"
    assignment_override(
        experiment=shared, user=account, variant=other_variant, actor=None, source="test"
    )
    account_key = log_in("mobile").json()["token"]
    post_outcomes(account_key, deck(account_key), ["e1"])
    return {
        "install": install,
        "install_user": install_user,
        "install_variants": my_variants(install_user),
        "install_impressions": {
            i.pk: i.request_context for i in Impression.objects.filter(user=install_user)
        },
        "account": account,
        "account_variants": my_variants(account),
        "experiments": (shared, install_only, account_only),
    }


def test_login_with_the_anonymous_token_merges_the_install_into_the_account(two_identities):
    world = two_identities
    install_user, account = world["install_user"], world["account"]
    # Conversions move too, and a clashing client event id is renamed like an outcome's.
    for user, event_ids in ((install_user, ["c1", "c2"]), (account, ["c1"])):
        with transaction.atomic(), acting_as(END_USER_ROLE, user.pk):
            conversions_record(
                user=user,
                conversions=[
                    {"event_id": event_id, "metric_name": "purchase", "value": 1}
                    for event_id in event_ids
                ],
            )

    response = log_in("mobile", anonymous_token=world["install"]["token"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_id"] == str(account.pk)
    # The account's variant wins where both were assigned; the install's other ones move.
    assert my_variants(account) == {
        "shared": world["account_variants"]["shared"],
        "install_only": world["install_variants"]["install_only"],
        "account_only": world["account_variants"]["account_only"],
    }
    assert my_variants(install_user) == {}
    # Impressions move with the tags they were served under (the install's variant).
    moved = {
        i.pk: i.request_context
        for i in Impression.objects.filter(pk__in=world["install_impressions"])
    }
    assert moved == world["install_impressions"]
    assert set(Impression.objects.filter(pk__in=moved).values_list("user", flat=True)) == {
        account.pk
    }
    # Event ids are per user: the install's `e1` clashes with the account's and is renamed.
    assert sorted(Outcome.objects.filter(user=account).values_list("event_id", flat=True)) == [
        "e1",
        "e2",
        f"{renamed_prefix(install_user.pk)}e1",
    ]
    assert not Outcome.objects.filter(user=install_user).exists()
    counts = {
        "rec_user_experiment_assignments": {"kept_account": 1, "moved": 1},
        "rec_impressions": {"moved": 4},
        "rec_outcomes": {"renamed": 1, "dropped": 0, "moved": 1},
        "rec_conversions": {"renamed": 1, "dropped": 0, "moved": 1},
        "rec_exposures": {"renamed": 0, "dropped": 0, "moved": 0},
    }
    assert sorted(Conversion.objects.filter(user=account).values_list("event_id", flat=True)) == [
        "c1",
        "c2",
        f"{renamed_prefix(install_user.pk)}c1",
    ]
    assert body["merged"] == {"anonymous_user_id": str(install_user.pk), "counts": counts}
    # Audited, with the counts.
    entry = IdentityMerge.objects.get()
    assert (entry.kind, entry.anonymous_user_id, entry.account_id, entry.counts) == (
        "login",
        install_user.pk,
        account.pk,
        counts,
    )
    # The anonymous identity is over: disabled, its tokens revoked, its device id forgotten.
    install_user.refresh_from_db()
    assert not install_user.is_active and install_user.device_id_digest is None
    assert me(world["install"]["token"]).status_code == 401
    assert me(body["token"]).json()["experiments"]
    fresh = anonymous(DEVICE)
    assert fresh.status_code == 201 and fresh.json()["user_id"] != str(install_user.pk)


def test_a_merged_anonymous_token_is_a_401_and_the_login_gives_no_token(two_identities):
    key = two_identities["install"]["token"]
    assert log_in("mobile", anonymous_token=key).status_code == 200
    tokens_before = AuthToken.objects.filter(user=two_identities["account"]).count()

    again = log_in("mobile", anonymous_token=key)

    assert again.status_code == 401
    assert again["WWW-Authenticate"] == "Token"
    assert set(api_error_fields(again)) == {"anonymous_token"}
    assert AuthToken.objects.filter(user=two_identities["account"]).count() == tokens_before
    assert IdentityMerge.objects.count() == 1


def test_a_wrong_password_merges_nothing(two_identities):
    key = two_identities["install"]["token"]

    response = log_in("mobile", password="wrong", anonymous_token=key)

    assert response.status_code == 400
    assert me(key).status_code == 200
    assert my_variants(two_identities["install_user"]) == two_identities["install_variants"]
    assert not IdentityMerge.objects.exists()


def test_an_accounts_token_cannot_be_merged_into_another_account(two_identities):
    victim = UserFactory(username="victim")
    victim_key = log_in("victim").json()["token"]
    assignment_override(
        experiment=two_identities["experiments"][0],
        user=victim,
        variant="control",
        actor=None,
        source="test",
    )

    response = log_in("mobile", anonymous_token=victim_key)

    assert response.status_code == 400
    assert set(api_error_fields(response)) == {"anonymous_token"}
    assert my_variants(victim) == {"shared": ("control", "manual")}
    assert me(victim_key).status_code == 200
    assert not IdentityMerge.objects.exists()


@pytest.mark.parametrize(
    "token",
    [
        "0" * 64,  # well-formed, no such token
        "not a token",
        "a" * 200,
        "ab\x00cd",
        12345,
        ["a" * 64],
        {"token": "a" * 64},
        "",
    ],
)
def test_a_bad_anonymous_token_merges_nothing(two_identities, token):
    response = log_in("mobile", anonymous_token=token)

    assert response.status_code in (400, 401)
    assert set(api_error_fields(response)) == {"anonymous_token"}
    assert not IdentityMerge.objects.exists()
    assert my_variants(two_identities["install_user"]) == two_identities["install_variants"]


def test_only_the_token_holder_can_merge_an_install(two_identities):
    """Knowing an anonymous user's id is not enough: the merge takes its token."""
    install_id = two_identities["install"]["user_id"]

    for field in ({"anonymous_user_id": install_id}, {"anonymous_token": install_id}):
        response = log_in("mobile", **field)
        assert response.status_code in (200, 400, 401)

    assert not IdentityMerge.objects.exists()
    assert my_variants(two_identities["install_user"]) == two_identities["install_variants"]


def test_an_event_id_taken_even_after_renaming_is_dropped_and_counted(two_identities):
    install_user, account = two_identities["install_user"], two_identities["account"]
    existing = Outcome.objects.filter(user=account).first()
    Outcome.objects.create(
        event_id=f"{renamed_prefix(install_user.pk)}e1",
        user=account,
        rec_request_id=existing.rec_request_id,
        media_item_id=existing.media_item_id,
        outcome_type="dislike",
    )

    response = log_in("mobile", anonymous_token=two_identities["install"]["token"])

    assert response.json()["merged"]["counts"]["rec_outcomes"] == {
        "renamed": 0,
        "dropped": 1,
        "moved": 1,
    }
    assert sorted(Outcome.objects.filter(user=account).values_list("event_id", flat=True)) == [
        "e1",
        "e2",
        f"{renamed_prefix(install_user.pk)}e1",
    ]
    assert not Outcome.objects.filter(user=install_user).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_merges_of_one_install_move_its_data_once(two_identities):
    """Two logins (to two accounts) racing with the same anonymous token: one merges, the
    other finds the identity gone, and nothing is split between the two accounts."""
    install_user = two_identities["install_user"]
    second = UserFactory(username="second")
    accounts = [two_identities["account"], second]
    barrier = threading.Barrier(2)
    outcomes = {}

    def merge(account):
        try:
            barrier.wait()
            with transaction.atomic():
                anonymous_user_merge(anonymous_user=install_user, account=account)
            outcomes[account.username] = "merged"
        except IllegalTransition:
            outcomes[account.username] = "gone"
        finally:
            connection.close()

    threads = [threading.Thread(target=merge, args=(account,)) for account in accounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["gone", "merged"]
    winner = next(a for a in accounts if outcomes[a.username] == "merged")
    loser = next(a for a in accounts if a is not winner)
    install_impressions = Impression.objects.filter(pk__in=two_identities["install_impressions"])
    assert set(install_impressions.values_list("user", flat=True)) == {winner.pk}
    assert set(Outcome.objects.filter(event_id="e2").values_list("user", flat=True)) == {winner.pk}
    loser_had = {"mobile": two_identities["account_variants"], "second": {}}
    assert my_variants(loser) == loser_had[loser.username]
    assert not Impression.objects.filter(user=install_user).exists()
    assert IdentityMerge.objects.count() == 1


# --- Sign-up ---


def test_sign_up_creates_an_account_that_can_log_in(db):
    response = sign_up(username="newbie", password=PASSWORD, email="newbie@example.com")

    assert response.status_code == 201, response.content
    assert me(response.json()["token"]).status_code == 200
    user = User.objects.get(username="newbie")
    assert not user.is_anonymous_install and not user.is_staff and user.has_usable_password()
    assert log_in("newbie").status_code == 200
    assert not IdentityMerge.objects.exists()


def test_sign_up_with_the_anonymous_token_turns_the_install_into_the_account(catalog):
    ActiveExperimentFactory(key="onboarding")
    install = anonymous(DEVICE).json()
    post_outcomes(install["token"], deck(install["token"]), ["e1"])
    install_user = User.objects.get(pk=install["user_id"])
    variants = my_variants(install_user)

    response = sign_up(username="newbie", password=PASSWORD, anonymous_token=install["token"])

    assert response.status_code == 201, response.content
    # The same user id: everything the install did is the account's, untouched.
    assert response.json()["user_id"] == install["user_id"]
    account = User.objects.get(pk=install["user_id"])
    assert (account.username, account.is_anonymous_install, account.device_id_digest) == (
        "newbie",
        False,
        None,
    )
    assert my_variants(account) == variants
    assert Impression.objects.filter(user=account).count() == 4
    assert Outcome.objects.filter(user=account).count() == 1
    assert me(install["token"]).status_code == 401
    assert me(response.json()["token"]).status_code == 200
    entry = IdentityMerge.objects.get()
    assert (entry.kind, entry.anonymous_user_id, entry.account_id) == (
        "signup",
        account.pk,
        account.pk,
    )
    assert entry.counts == {
        "rec_user_experiment_assignments": {"kept": 1},
        "rec_impressions": {"kept": 4},
        "rec_outcomes": {"kept": 1},
        "rec_conversions": {"kept": 0},
        "rec_exposures": {"kept": 0},
    }
    # The device id no longer leads to the account: a password does.
    assert anonymous(DEVICE).json()["user_id"] != install["user_id"]
    assert log_in("newbie").status_code == 200
    again = sign_up(username="other", password=PASSWORD, anonymous_token=install["token"])
    assert again.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "Taken", "password": PASSWORD}, "username"),
        ({"username": "fresh", "password": PASSWORD, "email": "TAKEN@example.com"}, "email"),
        ({"username": "fresh", "password": "12345678"}, "password"),
        ({"username": "fresh", "password": "short"}, "password"),
        ({"username": "anon-0123", "password": PASSWORD}, "username"),
        ({"username": "has space", "password": PASSWORD}, "username"),
        ({"username": "nul\x00", "password": PASSWORD}, "username"),
        ({"username": 42, "password": PASSWORD}, "username"),
        ({"username": "fresh", "password": ["x"]}, "password"),
        ({"username": "fresh", "password": PASSWORD, "email": "not-an-email"}, "email"),
        ({"username": "fresh", "password": PASSWORD, "email": 7}, "email"),
        ({"username": "x" * 151, "password": PASSWORD}, "username"),
        ({"password": PASSWORD}, "username"),
    ],
)
def test_a_bad_sign_up_is_a_400_naming_the_field(db, body, field):
    UserFactory(username="taken", email="taken@example.com")

    response = sign_up(**body)

    assert response.status_code == 400, response.content
    assert field in api_error_fields(response)
    assert User.objects.count() == 1


def test_sign_ups_are_rate_limited_per_address(db, settings):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "signup_address": "2/hour"}
    client = APIClient()
    statuses = [
        client.post(
            SIGNUP_URL,
            {"username": f"user_{n}", "password": PASSWORD},
            format="json",
            REMOTE_ADDR="203.0.113.5",
        ).status_code
        for n in range(3)
    ]

    assert statuses == [201, 201, 429]


# --- Row-level security and the registry ---


def test_an_end_user_cannot_read_the_merge_audit(two_identities):
    log_in("mobile", anonymous_token=two_identities["install"]["token"])
    with (
        acting_as(END_USER_ROLE, two_identities["account"].pk),
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("select count(*) from accounts_identity_merge")


def test_every_registered_table_is_one_with_user_rows(db):
    tables = {spec.table for spec in merge_tables()}

    assert {"rec_user_experiment_assignments", "rec_impressions", "rec_outcomes"} <= tables
    with connection.cursor() as cursor:
        cursor.execute(
            "select table_name from information_schema.columns "
            "where column_name = 'user_id' and table_name = any(%s)",
            [list(tables)],
        )
        assert {name for (name,) in cursor.fetchall()} == tables


# --- Admin and schema ---


def test_the_admin_lists_merges_read_only_and_filters_anonymous_users(admin, two_identities):
    log_in("mobile", anonymous_token=two_identities["install"]["token"])

    merges = admin.get("/admin/accounts/identitymerge/")
    anonymous_users = admin.get("/admin/accounts/user/?is_anonymous_install__exact=1")

    assert merges.status_code == anonymous_users.status_code == 200
    assert str(two_identities["install_user"].pk) in merges.content.decode()
    assert two_identities["install_user"].username in anonymous_users.content.decode()
    assert "mobile" not in anonymous_users.content.decode()
    assert admin.get("/admin/accounts/identitymerge/add/").status_code == 403


def test_the_schema_documents_the_auth_endpoints_with_the_error_shape(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    anonymous_op = schema["paths"]["/api/v1/auth/anonymous"]["post"]
    signup_op = schema["paths"]["/api/v1/auth/signup"]["post"]
    token_op = schema["paths"]["/api/v1/auth/token"]["post"]
    for operation in (anonymous_op, signup_op, token_op):
        for status in ("400", "401", "429"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}
    assert {"200", "201"} <= set(anonymous_op["responses"])
    assert "201" in signup_op["responses"]
    body = schema["components"]["schemas"]
    assert (
        "anonymous_token"
        in body[
            token_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        ]["properties"]
    )
