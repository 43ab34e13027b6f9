"""WSGI entry point of the demo: ``harness.demo.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harness.demo.settings")
application = get_wsgi_application()
