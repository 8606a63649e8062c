"""Reading the screens' responses back in tests."""

from __future__ import annotations

import json
import re

from dmobs.models import AuditLog

ENTRY_ROW_RE = re.compile(r'<tr class="entry" id="entry-([0-9A-Za-z_-]+)"')

LIST_URLS = {
    "dashboard": "/dashboard/settings/audit-log",
    "portal": "/portal/audit",
    "manage": "/manage/audit",
}


def row_ids(response) -> list[str]:
    return ENTRY_ROW_RE.findall(response.content.decode())


def streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


def ndjson_records(response) -> list[dict]:
    return [json.loads(line) for line in streamed(response).splitlines() if line]


def entries_by_id(ids) -> dict[str, AuditLog]:
    return AuditLog.objects.in_bulk(list(ids))
