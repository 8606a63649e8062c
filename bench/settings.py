"""Settings for `make bench`: the product's settings plus the peer admin site."""

from dmobs.settings import *  # noqa: F403
from dmobs.settings import BASE_DIR

ROOT_URLCONF = "bench.urls"
# Production static files (hashed manifest) collected by bench/run.py, apart
# from the developer's own staticfiles/.
STATIC_ROOT = BASE_DIR / "var" / "bench-static"
