"""`manage.py dev_logins` (run by `make run` and `make screenshots`) keeps the development
passwords in .local/, where tests/e2e/screenshots.py reads the admin's."""

import io

from django.contrib.auth import get_user_model
from django.core.management import call_command

from recsys_experiments.accounts.management.commands import dev_logins
from tests.factories.users import UserFactory


def run(**options) -> str:
    out = io.StringIO()
    call_command("dev_logins", stdout=out, **options)
    return out.getvalue()


def test_the_logins_are_created_kept_and_printed(db, tmp_path, monkeypatch):
    monkeypatch.setattr(dev_logins, "PASSWORD_DIR", tmp_path / ".local")
    UserFactory(username="demo")
    first = run(port=8123)
    admin_password = (tmp_path / ".local" / "admin_password").read_text().strip()
    demo_password = (tmp_path / ".local" / "demo_password").read_text().strip()
    assert first.splitlines() == [
        f"Admin: http://127.0.0.1:8123/admin/  user: admin  password: {admin_password}",
        f"Demo app user: demo  password: {demo_password}  "
        "(POST http://127.0.0.1:8123/api/v1/auth/token)",
    ]
    assert (tmp_path / ".local" / "admin_password").stat().st_mode & 0o777 == 0o600
    assert run(port=8123) == first
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password(admin_password)
