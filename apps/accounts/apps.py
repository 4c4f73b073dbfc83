from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        from apps.accounts import key_cache, signals  # noqa: F401  (connects its receivers)

        key_cache.connect()
