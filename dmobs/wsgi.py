import os

# Before anything that may read settings (tracing does): gunicorn started
# without DJANGO_SETTINGS_MODULE would otherwise answer 500 to everything.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmobs.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from dmobs.observability.tracing import configure_tracing  # noqa: E402

configure_tracing()
application = get_wsgi_application()
