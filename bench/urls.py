from django.urls import path

from bench.peer_admin import peer_site
from dmobs.urls import urlpatterns as product_urlpatterns

urlpatterns = [path("bench-admin/", peer_site.urls), *product_urlpatterns]
