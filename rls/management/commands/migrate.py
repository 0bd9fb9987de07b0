"""`manage.py migrate` as the schema owner (the `owner` database alias, DATABASE_OWNER_URL) unless
--database says otherwise: the application's role may not change the schema."""

from django.conf import settings
from django.core.management.commands import migrate


class Command(migrate.Command):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        if "owner" in settings.DATABASES:
            parser.set_defaults(database="owner")
