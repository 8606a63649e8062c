"""Settings for `make bench`: the product's settings plus the peer admin site."""

from dmobs.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
