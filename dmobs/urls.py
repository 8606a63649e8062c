from django.contrib import admin
from django.urls import include, path

from dmobs import views as dmobs_views
from dmobs.collectors.views import platform_metrics
from dmobs.integrity import views as integrity_views
from dmobs.observability import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", dmobs_views.metrics, name="metrics"),
    path("metrics/platform", platform_metrics, name="platform_metrics"),
    path("integrity/keys.json", integrity_views.keys_json, name="integrity_keys"),
    path("integrity/public-key.pem", integrity_views.public_key_pem, name="integrity_public_key"),
    path("admin/", admin.site.urls),
    path("", include("auditui.urls")),
]
