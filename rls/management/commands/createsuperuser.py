"""`manage.py createsuperuser` makes a platform operator (no municipality) in the platform scope:
outside any scope the application's role may not write a user row (row-level security)."""

from typing import Any

from django.contrib.auth.management.commands import createsuperuser

from backend.tenancy import platform_scope


class Command(createsuperuser.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        with platform_scope():
            super().handle(*args, **options)
