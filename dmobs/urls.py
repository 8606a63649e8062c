from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from dmobs import views as dmobs_views


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", dmobs_views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("auditui.urls")),
]
