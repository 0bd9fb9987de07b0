from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "outreach"
    verbose_name = "気づき・支え愛連絡会・継続的支援"

    def ready(self) -> None:
        from outreach import sync

        sync.register()
