from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from config.localdb import stored_secret

DEMO_USERNAME = "demo"


def _ensure_password(user, password: str) -> None:
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])


class Command(BaseCommand):
    help = (
        "Development logins: create the superuser 'admin' (idempotent), give it and the demo "
        "app user (when seed_demo made one) the passwords kept in .local/, and print both."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="port shown in the login URL")

    def handle(self, *args, port: int, **options):
        users = get_user_model().objects
        admin_password = stored_secret("admin_password", length=12)
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
            demo_password = stored_secret("demo_password", length=12)
            _ensure_password(demo, demo_password)
            self.stdout.write(
                f"Demo app user: {DEMO_USERNAME}  password: {demo_password}  "
                f"(POST http://127.0.0.1:{port}/api/v1/auth/token)"
            )
