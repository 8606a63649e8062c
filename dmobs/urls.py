from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from dmobs import views as dmobs_views
from dmobs.integrity import views as integrity_views


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", dmobs_views.metrics, name="metrics"),
    path("integrity/keys.json", integrity_views.keys_json, name="integrity_keys"),
    path("integrity/public-key.pem", integrity_views.public_key_pem, name="integrity_public_key"),
    path("admin/", admin.site.urls),
    path("", include("auditui.urls")),
]
