"""A complete Django project behind oakid-gate (``oakid_gate.django``): settings.

The gate runs in Django's middleware chain, so the project is protected however
it is served; ``request.user`` is a Django user made from the provider's claims.
From the repository's root, against the dev-idp::

    oakid-gate dev-idp --port 9000 --client-id oak_dev --client-secret dev-secret &
    # its users: alice (groups admins, staff), bob (staff), carol (none)
    export OAKID_ISSUER=http://127.0.0.1:9000 OAKID_CLIENT_ID=oak_dev \\
        OAKID_CLIENT_SECRET=dev-secret \\
        OAKID_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') \\
        DJANGO_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')
    python examples/django_app/manage.py migrate
    gunicorn --bind 127.0.0.1:8000 examples.django_app.wsgi:application   # WSGI
    uvicorn --port 8000 examples.django_app.asgi:application               # or ASGI

Then open http://127.0.0.1:8000/ (any user) and http://127.0.0.1:8000/admin/
(alice and bob; alice is a superuser). The example's tests, with no provider::

    python examples/django_app/manage.py test examples.django_app.tests
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Set DJANGO_SECRET_KEY: without it each process has a key of its own, good for a try only.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", *os.environ.get("DJANGO_ALLOWED_HOSTS", "").split()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oakid_gate.django",  # its model links users to the provider's identities
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "oakid_gate.django.middleware.OakIDMiddleware",  # after sessions and auth
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Users are the gate's: the backend takes no passwords.
AUTHENTICATION_BACKENDS = ["oakid_gate.django.backends.OakIDBackend"]

# The gate: its settings by their names, and the Django side's options. What is
# not here comes from OAKID_* variables, as everywhere in oakid-gate: OAKID_ISSUER,
# OAKID_CLIENT_ID, OAKID_CLIENT_SECRET, OAKID_SECRET (and OAKID_SESSION_STORE:
# several workers need sqlite:// or redis://).
OAKID = {
    "public_paths": ["/health"],
    "sync_groups": True,  # Django groups = the provider's "groups" claim
    "staff_groups": ["staff"],  # is_staff: the admin
    "superuser_groups": ["admins"],  # is_superuser
}

ROOT_URLCONF = "examples.django_app.urls"
WSGI_APPLICATION = "examples.django_app.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB") or str(HERE / "db.sqlite3"),
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
