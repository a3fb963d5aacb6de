"""Django in this test process: configured once, in code, with nothing in the environment.

Django's settings can be configured once per process, so every test that runs
Django in process shares this configuration (:func:`configure`), the apps the
example project and the unit tests need, and changes the rest per test with
``override_settings`` (``ROOT_URLCONF``, ``OAKID``, ``MIDDLEWARE``). Nothing is
put in ``os.environ`` (no ``DJANGO_SETTINGS_MODULE``): the subprocesses other
tests start see the environment they always did. The database is a SQLite
file of its own (the async middleware reaches it from a thread), migrated
once; :func:`empty_database` clears it between tests.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: settings the OAKID of every test starts from (the provider is never called)
GATE_SETTINGS: dict[str, Any] = {
    "issuer": "http://127.0.0.1:9",
    "client_id": "django-tests",
    "client_secret": "cs",
    "secret": "s" * 32,
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oakid_gate.django",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "oakid_gate.django.middleware.OakIDMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

_lock = threading.Lock()
_done = False


def configure() -> None:
    """Configure Django for this process (once), set it up and migrate its database."""
    global _done
    with _lock:
        if _done:
            return
        import django
        from django.conf import settings
        from django.core.management import call_command

        home = Path(tempfile.mkdtemp(prefix="oakid-django-tests-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        settings.configure(
            DEBUG=False,
            SECRET_KEY="django-tests-" + "k" * 40,
            ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
            INSTALLED_APPS=INSTALLED_APPS,
            MIDDLEWARE=MIDDLEWARE,
            AUTHENTICATION_BACKENDS=["oakid_gate.django.backends.OakIDBackend"],
            ROOT_URLCONF="apps.django_urls",
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": str(home / "db.sqlite3"),
                }
            },
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True,
                    "OPTIONS": {
                        "context_processors": [
                            "django.template.context_processors.request",
                            "django.contrib.auth.context_processors.auth",
                            "django.contrib.messages.context_processors.messages",
                        ]
                    },
                }
            ],
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast
            STATIC_URL="/static/",
            USE_TZ=True,
            OAKID={**GATE_SETTINGS, "public_paths": ["/public", "/public/*"]},
        )
        django.setup()
        call_command("migrate", verbosity=0)
        _done = True


def empty_database() -> None:
    """Every row of every table gone (Django's ``flush``), and the gate built afresh."""
    from django.core.management import call_command

    from oakid_gate.django import set_gate_adapter

    call_command("flush", interactive=False, verbosity=0)
    set_gate_adapter(None)
    _forget_gate()


def _forget_gate() -> None:
    """The next request builds the gate from ``settings.OAKID`` again (a fresh store)."""
    from django.core.signals import setting_changed

    setting_changed.send(sender=None, setting="OAKID", value=None, enter=False)


def oakid(**extra: Any) -> dict[str, Any]:
    """``OAKID`` for a test: the project's gate settings, ``/public`` public, and ``extra``."""
    return {**GATE_SETTINGS, "public_paths": ["/public", "/public/*"], **extra}


def django_project() -> Iterator[None]:
    """Django configured for a test, its database emptied after it (the body of the
    ``django_project`` fixture of tests/conftest.py)."""
    configure()
    yield
    empty_database()
