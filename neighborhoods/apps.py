from django.apps import AppConfig


class NeighborhoodsConfig(AppConfig):
    name = "neighborhoods"
    verbose_name = "地域 (自治会・世帯)"
