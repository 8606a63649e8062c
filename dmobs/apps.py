from django.apps import AppConfig


class DmobsConfig(AppConfig):
    name = "dmobs"
    verbose_name = "dmobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from dmobs import signals  # noqa: F401  (connects the sign-in audit receivers)
        from dmobs.logger import forget_request

        request_finished.connect(forget_request, dispatch_uid="dmobs.logger.forget_request")
