"""The collectors' reads on PostgreSQL: every statement walks an index, none scans
audit_logs, and a scrape sends a fixed number of statements.

20,000 entries from ``audit_load`` (24 tenants, two years) plus the demo,
ANALYZEd, so the planner decides on real statistics. The cost at 1,000,000
entries is measured by ``make bench-collectors`` (bench/COLLECTORS.md).
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dmobs.collectors.activity import ActivityCollector
from dmobs.collectors.llm import LlmCollector

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="query plans are PostgreSQL's: run with DATABASE_URL=postgres://...",
)


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("audit_load", rows=20_000, tenants=24, verbosity=0)
        call_command("seed_demo", stdout=StringIO())
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_logs")
            cursor.execute("ANALYZE llm_calls")
            cursor.execute("ANALYZE dmobs_tenant")
        yield
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE audit_logs, audit_facets, llm_calls, dmobs_spend_cap, "
                "dmobs_membership, dmobs_reviewerassignment, dmobs_tenant, dmobs_user CASCADE"
            )


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.parametrize("collector", [ActivityCollector, LlmCollector], ids=["activity", "llm"])
def test_no_statement_scans_a_big_table(loaded, django_db_blocker, collector):
    with django_db_blocker.unblock():
        with CaptureQueriesContext(connection) as captured:
            collector().read()
        assert 3 <= len(captured) <= 8
        for query in captured.captured_queries:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + query["sql"])
                (plan,) = cursor.fetchone()[0]
            plan = plan if isinstance(plan, dict) else json.loads(plan)
            scans = [
                node.get("Relation Name")
                for node in plan_nodes(plan["Plan"])
                if node["Node Type"] == "Seq Scan"
            ]
            assert "audit_logs" not in scans, query["sql"]
