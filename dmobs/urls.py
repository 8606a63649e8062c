from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from dmobs import views as dmobs_views
from dmobs.collectors.views import platform_metrics


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", dmobs_views.metrics, name="metrics"),
    path("metrics/platform", platform_metrics, name="platform_metrics"),
    path("admin/", admin.site.urls),
    path("", include("auditui.urls")),
]
