"""Joins the two 0003 migrations made side by side: audit_facets and the trigram
index (perf, PostgreSQL) and the MongoDB list and text indexes (mongo). Neither
touches what the other does."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("dmobs", "0003_audit_facets_and_search"),
        ("dmobs", "0003_audit_logs_mongodb_indexes"),
    ]

    operations = []
