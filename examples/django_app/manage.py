#!/usr/bin/env python
"""The example project's ``manage.py``: ``python examples/django_app/manage.py migrate``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The project is the package examples.django_app: the repository's root on the path
    # (in place of this directory, whose settings.py and urls.py are not top-level modules).
    sys.path[0] = str(Path(__file__).resolve().parents[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
