"""The migrations of :mod:`oakid_gate.django` (``python manage.py migrate``)."""

__all__: list[str] = []
