"""WSGI entry point: ``gunicorn examples.django_app.wsgi:application``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
application = get_wsgi_application()  # the gate is in MIDDLEWARE: nothing to wrap
