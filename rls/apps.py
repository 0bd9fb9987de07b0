from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class RowLevelSecurityConfig(AppConfig):
    """Database-enforced tenancy and least privilege: the application role's grants and the
    row-level security policies, derived from the models and installed after every migrate."""

    name = "rls"
    verbose_name = "Row-level security"

    def ready(self) -> None:
        from rls import checks  # noqa: F401  (registers the deploy checks)
        from rls.schema import install_after_migrate

        # Once per migrate (post_migrate is sent after every migration has run: every table exists).
        post_migrate.connect(install_after_migrate, sender=self, dispatch_uid="rls-install")
        connection_created.connect(_connection_opened, dispatch_uid="rls-connection-opened")


def _connection_opened(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Every query on every connection first makes its tenant settings right (backend.tenancy)."""
    from backend import tenancy

    tenancy.connection_opened(connection)
