import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from recsys_experiments.management.base import RecsysCommand

DEMO_USERNAME = "demo"
# The passwords are kept where `make screenshots` (tests/e2e/screenshots.py) reads them.
PASSWORD_DIR = Path(settings.BASE_DIR) / ".local"


def stored_password(name: str, length: int = 12) -> str:
    """A generated password kept in .local/<name> so it survives restarts."""
    PASSWORD_DIR.mkdir(exist_ok=True)
    path = PASSWORD_DIR / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(length)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def _ensure_password(user, password: str) -> None:
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])


class Command(RecsysCommand):
    help = (
        "Development logins: create the superuser 'admin' (idempotent), give it and the demo "
        "app user (when seed_demo made one) the passwords kept in .local/, and print both."
    )
    # Runs as the connecting user, as before: it only creates the development logins.
    service_transaction = False

    def add_options(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="port shown in the login URL")

    def run(self, *, port: int, **options):
        users = get_user_model().objects
        admin_password = stored_password("admin_password")
        admin, _ = users.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        if not (admin.is_staff and admin.is_superuser and admin.is_active):
            admin.is_staff = admin.is_superuser = admin.is_active = True
            admin.save()
        _ensure_password(admin, admin_password)
        self.stdout.write(
            f"Admin: http://127.0.0.1:{port}/admin/  user: admin  password: {admin_password}"
        )
        demo = users.filter(username=DEMO_USERNAME).first()
        if demo is not None:
            demo_password = stored_password("demo_password")
            _ensure_password(demo, demo_password)
            self.stdout.write(
                f"Demo app user: {DEMO_USERNAME}  password: {demo_password}  "
                f"(POST http://127.0.0.1:{port}/api/v1/auth/token)"
            )
