from django.apps import AppConfig


class AudituiConfig(AppConfig):
    name = "auditui"
    verbose_name = "Audit log screens"

    def ready(self):
        from auditui import checks  # noqa: F401  (registers the system checks)
