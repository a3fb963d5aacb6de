"""The Django example's own test suite (``examples/django_app/tests.py``, written only with
``oakid_gate.testing``), run as a Django user runs it: ``manage.py test``.

It runs in a process of its own, so its settings module is Django's configuration
there and nothing of it reaches this process (whose Django, if any, is the unit
tests', :mod:`support.django_project`). No provider and no OAKID_* variable is needed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from peers.gate import environment

ROOT = Path(__file__).resolve().parent.parent


def test_the_django_examples_own_tests_pass(tmp_path: Path) -> None:
    """``python examples/django_app/manage.py test examples.django_app.tests`` passes."""
    env = environment()  # no OAKID_* of the developer's
    env["DJANGO_DB"] = str(tmp_path / "db.sqlite3")
    result = subprocess.run(
        [sys.executable, "examples/django_app/manage.py", "test", "examples.django_app.tests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"Ran [1-9][0-9]* tests?", result.stderr) and "\nOK" in result.stderr
