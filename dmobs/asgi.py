import os

from django.core.asgi import get_asgi_application

from dmobs.observability.tracing import configure_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmobs.settings")
configure_tracing()
application = get_asgi_application()
