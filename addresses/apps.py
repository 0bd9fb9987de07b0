from django.apps import AppConfig


class AddressesConfig(AppConfig):
    name = "addresses"
    verbose_name = "住所参照（位置参照情報・アドレス・ベース・レジストリ）"
