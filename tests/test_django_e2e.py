"""The Django example project (``examples/django_app``, on ``oakid_gate.django``) served for
real, under WSGI (gunicorn) and under ASGI (uvicorn), against the dev-idp on 127.0.0.1:
the admin is reachable for a member of the ``staff`` group and refused to anyone else.

Each server is started as the example's docstring says (settings in ``OAKID_*``
variables, the database migrated first), and each test signs in at the dev-idp
as a browser would (:func:`peers.gate.dev_idp_sign_in`): alice (groups admins,
staff), bob (staff), carol (no group).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from peers.gate import (
    NAVIGATION_HEADERS,
    DevIdP,
    dev_idp_sign_in,
    environment,
    start_dev_idp,
    wait_until_answers,
)
from peers.ports import free_port
from peers.process import spawn, terminate

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
#: the example served as its docstring says: gunicorn (WSGI) or uvicorn (ASGI) on ``port``
SERVERS = {
    "wsgi": lambda port: [
        *("-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket"),
        "examples.django_app.wsgi:application",
    ],
    "asgi": lambda port: [
        *("-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off"),
        "examples.django_app.asgi:application",
    ],
}


@dataclass(frozen=True)
class Project:
    url: str
    interface: str


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("django-e2e")


@pytest.fixture(scope="module")
def idp(workdir: Path) -> Iterator[DevIdP]:
    with start_dev_idp(workdir, client_id="oak_django") as process:
        yield process


@pytest.fixture(scope="module", params=sorted(SERVERS))
def project(request: pytest.FixtureRequest, workdir: Path, idp: DevIdP) -> Iterator[Project]:
    """The example project, migrated, served by gunicorn (wsgi) or uvicorn (asgi)."""
    interface: str = request.param
    env = environment(idp.settings(secret=secrets.token_urlsafe(32)))
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    env["DJANGO_DB"] = str(workdir / f"{interface}.sqlite3")
    manage = [sys.executable, "examples/django_app/manage.py", "migrate", "--noinput", "-v0"]
    subprocess.run(manage, cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    log_path = workdir / f"{interface}.log"
    command = [sys.executable, *SERVERS[interface](port)]
    process = spawn(command, log_path=log_path, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/oauth2/ping", process, log_path)
        yield Project(url, interface)
    finally:
        terminate(process)


def client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


def test_staff_reach_the_admin(project: Project) -> None:
    """bob (group staff) signs in at /admin/ and sees the admin's index."""
    with client() as http:
        page = dev_idp_sign_in(http, f"{project.url}/admin/", "bob")
    assert page.status_code == 200, page.text[:500]
    assert "Site administration" in page.text


def test_others_are_refused_the_admin(project: Project) -> None:
    """carol (no group) is signed in, but the admin sends her to its login page, which
    says she is not authorized; its password form signs no one in."""
    with client() as http:
        refused = dev_idp_sign_in(http, f"{project.url}/admin/", "carol")
        assert refused.status_code == 302
        assert refused.headers["location"] == "/admin/login/?next=/admin/"
        page = http.get(f"{project.url}/admin/login/?next=/admin/", headers=NAVIGATION_HEADERS)
        assert page.status_code == 200 and "not authorized" in page.text
        token = http.cookies["csrftoken"]
        form = {"csrfmiddlewaretoken": token, "username": "u-alice", "password": "alice"}
        tried = http.post(f"{project.url}/admin/login/?next=/admin/", data=form)
        assert tried.status_code == 200  # the form again: no password signs anyone in
        assert http.get(f"{project.url}/admin/").status_code == 302


def test_a_superuser_changes_things_in_the_admin(project: Project) -> None:
    """alice (group admins: a superuser) adds a group with the admin's CSRF-checked form."""
    name = f"editors-{project.interface}"
    with client() as http:
        form = dev_idp_sign_in(http, f"{project.url}/admin/auth/group/add/", "alice")
        assert form.status_code == 200, form.text[:500]
        data = {"csrfmiddlewaretoken": http.cookies["csrftoken"], "name": name}
        saved = http.post(f"{project.url}/admin/auth/group/add/", data=data)
        assert saved.status_code == 302, saved.text[:500]
        listing = http.get(f"{project.url}/admin/auth/group/")
    assert name in listing.text and "staff" in listing.text  # staff: synced from the claim


def test_the_home_page_is_the_django_user(project: Project) -> None:
    """The @login_required page shows the Django user made from alice's claims."""
    with client() as http:
        page = dev_idp_sign_in(http, f"{project.url}/", "alice")
    assert page.status_code == 200, page.text[:500]
    assert page.json() == {
        "username": "u-alice",
        "email": "alice@example.test",
        "name": "Alice Admin",
        "is_staff": True,
        "is_superuser": True,
        "groups": ["admins", "staff"],
    }


def test_the_admins_log_out_ends_the_gate_session(project: Project) -> None:
    """The admin's "Log out" button goes on to the gate's sign-out (307, the same POST):
    afterwards the admin needs a sign-in again, and the public page is anonymous."""
    origin = {"Origin": project.url}  # what a browser sends with a form's POST
    with client() as http:
        assert dev_idp_sign_in(http, f"{project.url}/admin/", "bob").status_code == 200
        data = {"csrfmiddlewaretoken": http.cookies["csrftoken"]}
        moved = http.post(f"{project.url}/admin/logout/", data=data, headers=origin)
        assert moved.status_code == 307, moved.text[:500]
        out = http.post(f"{project.url}{moved.headers['location']}", data=data, headers=origin)
        assert out.status_code in (200, 303), out.text[:500]
        again = http.get(f"{project.url}/admin/", headers=NAVIGATION_HEADERS)
        assert again.status_code == 302
        assert re.search(r"/oauth(2/start|/authorize)", again.headers["location"])
        assert http.get(f"{project.url}/health").json() == {"ok": True, "signed_in": False}


def test_without_a_session(project: Project) -> None:
    """An API call without a session is the gate's 401; /health is public."""
    with client() as http:
        api = http.get(f"{project.url}/", headers={"Accept": "application/json"})
        assert api.status_code == 401 and api.json()["error"] == "unauthenticated"
        forged = http.get(f"{project.url}/health", headers={"Remote-User": "u-alice"})
        assert forged.json() == {"ok": True, "signed_in": False}
