"""Documents written by the platform's own client: the official Node.js driver
(``tests/mongo/node_writer.js``, the ``mongodb`` package pinned in package.json)
in every shape the platform produces, and malformed ones, through the three
screens (list, filters, detail, diff) and both exports, for the right viewers only.

The driver writes; the tests read back with PyMongo (the emulator answers the
Node driver's inserts but not its ``find``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from tests.auditui.conftest import build_world

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(databases=["default", "audit"], transaction=True)


def write_with_node(world) -> dict[str, str]:
    node = shutil.which("node")
    assert node, "Node.js is required for the Node-driver tests (it is needed for htmx too)"
    db = connections["audit"].settings_dict["NAME"]
    spec = {
        "uri": settings.DATABASES["audit"]["HOST"],
        "db": db,
        "tenants": {slug: t.ref_id for slug, t in world.tenants.items()},
        "people": {name: u.ref_id for name, u in world.users.items()},
        "now": int(time.time() * 1000),
    }
    result = subprocess.run(
        [node, str(ROOT / "tests/mongo/node_writer.js")],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def node_world(audit_collection):
    world = build_world()
    world.node_ids = write_with_node(world)
    return world
