from django.contrib import admin
from django.urls import include, path

from dmobs import health
from dmobs import views as dmobs_views
from dmobs.collectors.views import platform_metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", dmobs_views.metrics, name="metrics"),
    path("metrics/platform", platform_metrics, name="platform_metrics"),
    path("admin/", admin.site.urls),
    path("", include("auditui.urls")),
]
