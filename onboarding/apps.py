from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "導入（市町村・受託法人・利用者の登録）"
