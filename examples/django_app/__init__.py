"""The example Django project behind oakid-gate (see ``settings.py``)."""
