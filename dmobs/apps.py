from django.apps import AppConfig


class DmobsConfig(AppConfig):
    name = "dmobs"
    verbose_name = "dmobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.core.signals import got_request_exception, request_finished, request_started

        from dmobs import signals  # connects the sign-in audit receivers
        from dmobs.observability.middleware import count_request_exception, reset_request_context

        # Request context: cleared before a request runs and after its response is closed.
        request_started.connect(reset_request_context, dispatch_uid="dmobs.request_started")
        request_finished.connect(reset_request_context, dispatch_uid="dmobs.request_finished")
        got_request_exception.connect(
            count_request_exception, dispatch_uid="dmobs.count_request_exception"
        )
        user_logged_in.connect(
            signals.remember_tenant_at_login, dispatch_uid="dmobs.tenant_at_login"
        )
