"""oakid_gate.django's middleware: the gate's paths and answers inside Django, Django's
session following the gate's, sync and async, its settings and its checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings
from support.django_project import MIDDLEWARE, oakid

from oakid_gate.testing.django import sign_in_django, sign_out_django

BOB = {"sub": "u-bob", "email": "bob@example.test", "groups": ["staff"]}
HTML = {"HTTP_ACCEPT": "text/html", "HTTP_SEC_FETCH_MODE": "navigate"}

pytestmark = pytest.mark.usefixtures("django_project")


def django_session_user(client: Client | AsyncClient) -> Any:
    """Who the client's Django session is signed in as (``None``: nobody, or no session)."""
    from django.contrib.sessions.models import Session

    cookie = client.cookies.get("sessionid")
    if cookie is None or not cookie.value:
        return None
    row = Session.objects.filter(session_key=cookie.value).first()
    return None if row is None else row.get_decoded().get("_auth_user_id")


# -- the gate's answers in Django --------------------------------------------------------


def test_the_gates_endpoints_answer_inside_django() -> None:
    """``/oauth2/*`` is the gate's, answered by the middleware before any URL resolving."""
    client = Client()
    assert client.get("/oauth2/ping").content == b"OK"
    assert client.get("/oauth2/userinfo").status_code == 401
    sign_in_django(client, BOB)
    assert client.get("/oauth2/userinfo").json()["sub"] == "u-bob"
    head = client.head("/oauth2/ping")
    assert head.status_code == 200 and head.content == b"" and head["Content-Length"] == "2"


def test_a_request_without_a_session_is_the_gates() -> None:
    """No session: an API call gets the gate's 401 with where to sign in, never the view."""
    response = Client().get("/")
    assert response.status_code == 401
    assert response.json()["login_url"] == "/oauth2/start?rd=%2F"


def test_a_public_path_is_anonymous() -> None:
    """A public path without a session reaches the view with Django's AnonymousUser and
    the gate's anonymous user, and writes no Django session."""
    client = Client()
    response = client.get("/public/page")
    assert response.json() == {
        "authenticated": False,
        "gate_user": None,
        "access_token": None,
        "remote_user": None,
    }
    assert "sessionid" not in response.cookies


def test_the_authorization_rules_refuse_before_django() -> None:
    """A user the gate's rules refuse gets its 403; Django signs no one in."""
    client = Client()
    with override_settings(OAKID=oakid(allowed_groups=["admins"])):
        sign_in_django(client, BOB)
        response = client.get("/", **HTML)
    assert response.status_code == 403 and b"admins" in response.content
    assert django_session_user(client) is None


#: a browser's navigation
BROWSER = {"headers": {"Sec-Fetch-Mode": "navigate", "User-Agent": "Mozilla/5.0 (X11; Linux)"}}
#: an old browser (no Sec-Fetch-*), and a client that is no browser
OLD_BROWSER = {"headers": {"User-Agent": "Mozilla/4.0 (compatible; MSIE 8.0)"}}
CURL = {"headers": {"User-Agent": "curl/8.5.0"}}


def test_a_signed_in_users_page_is_not_kept_by_the_browser() -> None:
    """A signed-in browser's response gets ``protected_cache_control`` (the back button
    after sign-out shows nothing), as under the ASGI and WSGI middleware; a public
    path's does not, nor one to a client that is no browser (gate/caching.py)."""
    client = Client()
    assert not Client().get("/public/page", **BROWSER).has_header("Cache-Control")
    sign_in_django(client, BOB)
    assert client.get("/", **BROWSER)["Cache-Control"] == "no-store"
    assert client.get("/", **OLD_BROWSER)["Cache-Control"] == "no-store"
    assert not client.get("/", **CURL).has_header("Cache-Control")
    with override_settings(OAKID=oakid(protected_cache_control="")):
        sign_in_django(client, BOB)
        assert not client.get("/", **BROWSER).has_header("Cache-Control")


async def test_a_signed_in_users_page_is_not_kept_under_asgi_either() -> None:
    """The same on Django's async path."""
    client = AsyncClient()
    sign_in_django(client, BOB)
    response = await client.get("/", **BROWSER)
    assert response["Cache-Control"] == "no-store"
    response = await client.get("/", **CURL)
    assert not response.has_header("Cache-Control")


# -- the gate's session and Django's -------------------------------------------------------


def test_the_gate_session_signs_django_in_once() -> None:
    """The first request of a gate session signs Django in (a Django session for the
    user); the following ones find it as it is."""
    client = Client()
    sign_in_django(client, BOB)
    client.get("/")
    key = client.cookies["sessionid"].value
    assert django_session_user(client) is not None
    client.get("/")
    assert client.cookies["sessionid"].value == key


def test_a_new_gate_session_is_a_new_django_session() -> None:
    """Another gate session (even for the same user) signs in again, with a new Django
    session key; another user's Django session is emptied, not inherited."""
    client = Client()
    sign_in_django(client, BOB)
    client.get("/")
    session = client.session
    session["cart"] = "bob's"
    session.save()
    first = client.cookies["sessionid"].value
    sign_in_django(client, {"sub": "u-carol"})
    assert client.get("/").json()["username"] == "u-carol"
    assert client.cookies["sessionid"].value != first
    assert "cart" not in client.session


def test_when_the_gate_session_ends_django_is_signed_out() -> None:
    """The gate session ends (sign-out, expiry): the next request is anonymous on a public
    path, the Django session signed out; protected paths are the gate's again."""
    client = Client()
    sign_in_django(client, BOB)
    assert client.get("/").json()["username"] == "u-bob"
    assert django_session_user(client) is not None
    sign_out_django(client)
    assert client.get("/public").json()["authenticated"] is False
    assert django_session_user(client) is None
    assert client.get("/").status_code == 401


def test_an_expired_gate_session_signs_django_out() -> None:
    """A gate session past its access token's expiry (no refresh token) has ended."""
    client = Client()
    sign_in_django(client, BOB, expires_in=-10)
    assert client.get("/public").json()["authenticated"] is False
    assert client.get("/").status_code == 401


def test_the_django_session_alone_signs_no_one_in() -> None:
    """A copy of the Django session cookie without the gate's is worth nothing."""
    client = Client()
    sign_in_django(client, BOB)
    client.get("/")
    thief = Client()
    thief.cookies["sessionid"] = client.cookies["sessionid"].value
    assert thief.get("/").status_code == 401
    assert thief.get("/public").json()["authenticated"] is False


def test_signing_out_through_the_admin_ends_the_gate_session() -> None:
    """The admin's "Log out" (a CSRF-checked POST) goes on to the gate's sign-out as the
    same POST (307), which ends the gate session and clears its cookie."""
    client = Client(enforce_csrf_checks=True)
    sign_in_django(client, BOB)
    client.get("/form")
    token = client.cookies["csrftoken"].value
    assert client.post("/admin/logout/").status_code == 403  # Django's CSRF check
    response = client.post("/admin/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 307 and response["Location"] == "/oauth2/sign_out"
    gone = client.post(
        "/oauth2/sign_out", {"csrfmiddlewaretoken": token}, HTTP_ORIGIN="http://testserver"
    )
    assert gone.status_code in (200, 302, 303)
    cleared = gone.cookies["oakid_session"]
    assert "Max-Age=0" in cleared.OutputString() and cleared.value == ""
    assert client.get("/").status_code == 401
    assert client.get("/public").json()["authenticated"] is False


def test_login_url_goes_into_the_gates_sign_in() -> None:
    """``LOGIN_URL`` (``sign_in``) sends to the gate's start, back to ``next``."""
    client = Client()
    sign_in_django(client, BOB)
    response = client.get("/accounts/login/?next=/perm")
    assert response.status_code == 302 and response["Location"] == "/oauth2/start?rd=%2Fperm"


def test_csrf_protected_posts_work_for_a_signed_in_user() -> None:
    """The sign-in rotates Django's CSRF token as ``login`` does; a form rendered after it
    posts with its token."""
    client = Client(enforce_csrf_checks=True)
    sign_in_django(client, BOB)
    client.get("/form")
    token = client.cookies["csrftoken"].value
    assert client.post("/form", {"value": "x"}).status_code == 403
    response = client.post("/form", {"value": "x", "csrfmiddlewaretoken": token})
    assert response.content == b"posted x"


# -- the admin -------------------------------------------------------------------------------


@pytest.fixture
def admin_settings() -> Iterator[None]:
    with override_settings(OAKID=oakid(staff_groups=["staff"], superuser_groups=["admins"])):
        yield


@pytest.mark.usefixtures("admin_settings")
def test_the_admin_is_for_the_staff_group() -> None:
    """Staff reach the admin; others are sent to its login page, which says they are
    not authorized (and cannot sign in there as anyone else)."""
    staff = Client()
    sign_in_django(staff, BOB)
    page = staff.get("/admin/")
    assert page.status_code == 200 and b"Site administration" in page.content
    other = Client()
    sign_in_django(other, {"sub": "u-carol"})
    refused = other.get("/admin/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")
    assert b"not authorized" in other.get(refused["Location"]).content


@pytest.mark.usefixtures("admin_settings")
def test_a_superuser_changes_things_in_the_admin() -> None:
    """A member of the superuser group adds a group through the admin's CSRF-checked form."""
    from django.contrib.auth.models import Group

    client = Client(enforce_csrf_checks=True)
    sign_in_django(client, {"sub": "u-alice", "groups": ["admins"]})
    form = client.get("/admin/auth/group/add/")
    assert form.status_code == 200
    token = client.cookies["csrftoken"].value
    saved = client.post("/admin/auth/group/add/", {"name": "editors", "csrfmiddlewaretoken": token})
    assert saved.status_code == 302, saved.content[:500]
    assert Group.objects.filter(name="editors").exists()


# -- async ---------------------------------------------------------------------------------


async def test_the_async_client_is_signed_in_the_same_way() -> None:
    """Under ASGI (Django's AsyncClient) the middleware runs on the event loop: the same
    user, from a sync view and from an async one."""

    client = AsyncClient()
    sign_in_django(client, BOB)
    for path in ("/", "/async"):
        response = await client.get(path)
        assert response.status_code == 200, response.content[:300]
        assert response.json()["username"] == "u-bob"
    assert (await client.get("/oauth2/ping")).content == b"OK"


async def test_async_anonymous_and_signed_out() -> None:
    """Async: a public path is anonymous; after the gate session ends, so is a signed-in
    client, and the protected path is the gate's."""
    from asgiref.sync import sync_to_async

    anonymous = await AsyncClient().get("/public")
    assert anonymous.json()["authenticated"] is False
    client = AsyncClient()
    sign_in_django(client, BOB)
    assert (await client.get("/public")).json()["username"] == "u-bob"
    sign_out_django(client)
    assert (await client.get("/public")).json()["authenticated"] is False
    assert (await client.get("/")).status_code == 401
    assert await sync_to_async(django_session_user)(client) is None


async def test_async_forged_remote_user_is_no_one() -> None:
    """Async: identity headers from the client are removed too."""
    response = await AsyncClient().get(
        "/public", headers={"Remote-User": "admin", "X-Forwarded-User": "admin"}
    )
    assert response.json()["authenticated"] is False and response.json()["remote_user"] is None


# -- settings and checks ----------------------------------------------------------------------


def test_an_unknown_oakid_key_is_improperly_configured() -> None:
    """A key that is neither a gate setting nor a Django-side option is named."""
    from oakid_gate.django.conf import load

    with pytest.raises(ImproperlyConfigured, match="'stafff_groups'"):
        load(oakid(stafff_groups=["staff"]))
    with (
        override_settings(OAKID=oakid(sync_group=True)),
        pytest.raises(ImproperlyConfigured, match="'sync_group'"),
    ):
        Client().get("/public")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sync_groups", "staff"),
        ("staff_groups", "staff"),
        ("superuser_groups", [1]),
        ("sync_groups", None),
    ],
)
def test_django_options_are_checked(key: str, value: Any) -> None:
    """Each option takes its type only (a lone string is not a list of groups)."""
    from oakid_gate.django.conf import load

    with pytest.raises(ImproperlyConfigured, match=repr(key)):
        load(oakid(**{key: value}))


def test_a_gate_setting_mistake_names_it() -> None:
    """A gate setting that is wrong is ImproperlyConfigured naming it, at start-up."""
    from oakid_gate.django.conf import load

    with pytest.raises(ImproperlyConfigured, match="'secret'"):
        load({**oakid(), "secret": "short"})
    with pytest.raises(ImproperlyConfigured, match="must be a dict"):
        load(["client_id"])


def test_the_installation_is_checked() -> None:
    """Django's system checks name each mistake of the installation."""
    from oakid_gate.django.checks import check_installation

    assert check_installation() == []
    ours = "oakid_gate.django.middleware.OakIDMiddleware"
    cases = {
        "oakid_gate.E001": {"MIDDLEWARE": [m for m in MIDDLEWARE if m != ours]},
        "oakid_gate.E002": {"MIDDLEWARE": [ours, *(m for m in MIDDLEWARE if m != ours)]},
        "oakid_gate.E003": {
            "MIDDLEWARE": [
                *(m for m in MIDDLEWARE if "Authentication" not in m),
                "django.contrib.auth.middleware.AuthenticationMiddleware",
            ]
        },
        "oakid_gate.E004": {
            "AUTHENTICATION_BACKENDS": ["django.contrib.auth.backends.ModelBackend"]
        },
        "oakid_gate.E005": {
            "MIDDLEWARE": [
                *MIDDLEWARE,
                "django.contrib.auth.middleware.PersistentRemoteUserMiddleware",
            ]
        },
        "oakid_gate.E006": {"OAKID": {"nope": 1}},
    }
    for expected, changes in cases.items():
        with override_settings(**changes):
            assert expected in {e.id for e in check_installation()}, expected


def test_without_the_backend_nothing_is_signed_in() -> None:
    """A project that forgot the backend gets an error naming it, not a silent anonymous."""
    with override_settings(AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]):
        client = Client(raise_request_exception=True)
        sign_in_django(client, BOB)
        with pytest.raises(ImproperlyConfigured, match="OakIDBackend"):
            client.get("/")


def test_an_unexpected_error_is_the_gates_500_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error nobody expected inside the gate is its 500 page with a reference, under
    Django too; nothing of the error reaches the visitor."""
    from oakid_gate.django import gate_adapter

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gate_adapter().gate, "handle", broken)
    response = Client().get("/", HTTP_X_REQUEST_ID="trace-django-500", **HTML)
    assert response.status_code == 500
    text = response.content.decode()
    assert "trace-django-500" in text and "a bug" not in text
