#!/usr/bin/env python
"""Django's command-line utility for dmobs."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dmobs.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        # Load the settings now: Django's command line would hide their error
        # behind "Unknown command" for any command but help.
        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as exc:
        sys.exit(f"manage.py: the settings are incomplete: {exc}")
    from dmobs.observability.tracing import configure_tracing

    configure_tracing()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
