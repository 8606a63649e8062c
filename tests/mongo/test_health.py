"""/readyz with the audit store on MongoDB: the audit check pings it."""

from __future__ import annotations

import pytest
from django.db import connections

pytestmark = pytest.mark.django_db(databases=["default", "audit"])


def test_readiness_pings_the_mongodb_audit_store(client):
    assert connections["audit"].vendor == "mongodb"
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"default": "ok", "audit": "ok"}
