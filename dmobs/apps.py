from django.apps import AppConfig


class DmobsConfig(AppConfig):
    name = "dmobs"
    verbose_name = "dmobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dmobs import signals  # noqa: F401  (connects the sign-in audit receivers)
