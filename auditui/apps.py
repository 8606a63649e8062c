from django.apps import AppConfig


class AudituiConfig(AppConfig):
    name = "auditui"
    verbose_name = "Audit log screens"
