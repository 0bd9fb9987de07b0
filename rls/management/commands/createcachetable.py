"""`manage.py createcachetable` as the schema owner (see migrate)."""

from django.conf import settings
from django.core.management.commands import createcachetable


class Command(createcachetable.Command):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        if "owner" in settings.DATABASES:
            parser.set_defaults(database="owner")
