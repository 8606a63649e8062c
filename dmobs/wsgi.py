import os

from django.core.wsgi import get_wsgi_application

from dmobs.tracing import configure_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmobs.settings")
configure_tracing()
application = get_wsgi_application()
