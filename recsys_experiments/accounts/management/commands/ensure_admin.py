from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from config.localdb import stored_secret


class Command(BaseCommand):
    help = (
        "Create the development superuser 'admin' (idempotent) with the password kept in "
        ".local/admin_password, and print the admin login line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="port shown in the login URL")

    def handle(self, *args, port: int, **options):
        password = stored_secret("admin_password", length=12)
        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(
            username="admin",
            defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True},
        )
        if created or not admin.check_password(password) or not admin.is_superuser:
            admin.is_staff = admin.is_superuser = admin.is_active = True
            admin.set_password(password)
            admin.save()
        self.stdout.write(
            f"Admin: http://127.0.0.1:{port}/admin/  user: admin  password: {password}"
        )
