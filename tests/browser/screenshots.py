"""``make screenshots``: PNGs of the three screens and an expanded row in docs/screenshots/.

Runs the screenshot test (a real headless Chromium against a live server with
the test world's data) with ``DMOBS_SCREENSHOTS_DIR`` set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    os.environ.setdefault("DMOBS_SCREENSHOTS_DIR", str(ROOT / "docs" / "screenshots"))
    return pytest.main(
        [str(ROOT / "tests" / "browser" / "test_screenshots.py"), "-q", "-p", "no:cacheprovider"]
    )


if __name__ == "__main__":
    sys.exit(main())
