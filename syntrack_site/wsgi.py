"""WSGI entry point: ``gunicorn syntrack_site.wsgi``."""

import os
import sys

from django.core.wsgi import get_wsgi_application

from syntrack_site.config import ConfigError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syntrack_site.settings")

try:
    application = get_wsgi_application()
except ConfigError as e:
    sys.stderr.write(f"syntrack: configuration error: {e}\n")
    # gunicorn stops instead of restarting workers that cannot boot.
    sys.exit(4)
