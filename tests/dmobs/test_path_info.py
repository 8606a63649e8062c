"""URLs with characters past U+00FF reach the views with tracing on (no 500)."""

from __future__ import annotations

import pytest
from django.conf import settings

from dmobs.models import User

pytestmark = pytest.mark.django_db


def test_the_fix_runs_before_the_tracing_middleware():
    # The request context middleware stays outermost (it counts every response).
    assert settings.MIDDLEWARE[:2] == [
        "dmobs.observability.middleware.RequestContextMiddleware",
        "dmobs.observability.middleware.WsgiPathInfoMiddleware",
    ]
    assert "opentelemetry" in settings.MIDDLEWARE[2]


@pytest.mark.parametrize("path", ["/manage/audit/%C4%80/", "/manage/audit/\u0100\U000b82bc/"])
def test_non_latin1_path_is_a_404_with_a_span(client, span_exporter, path):
    client.force_login(User.objects.create_superuser("root", password="pw-long-enough-1"))
    response = client.get(path)
    assert response.status_code == 404
    spans = [s for s in span_exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert spans and spans[-1].attributes.get("http.response.status_code") == 404
