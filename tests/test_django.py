"""oakid_gate.django: Django's user from the gate's, through the real middleware.

Django runs in this process (``support.django_project``); each test signs a
test client in with ``oakid_gate.testing.django.sign_in_django`` (a real session
in the gate's store, its cookie) and reads what the views see.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from support.django_project import GATE_SETTINGS, oakid

from oakid_gate.testing.django import sign_in_django

ALICE = {
    "sub": "u-alice",
    "email": "alice@example.test",
    "email_verified": True,
    "given_name": "Alice",
    "family_name": "Admin",
    "groups": ["admins", "staff"],
}
BOB = {"sub": "u-bob", "email": "bob@example.test", "groups": ["staff"]}
CAROL = {"sub": "u-carol", "email": "carol@example.test"}

pytestmark = pytest.mark.usefixtures("django_project")


def signed_in(claims: dict[str, Any], **client_options: Any) -> Client:
    client = Client(**client_options)
    sign_in_django(client, claims)
    return client


def whoami(client: Client, path: str = "/") -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    answer: dict[str, Any] = response.json()
    return answer


def user_model() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model()


# -- users from claims ---------------------------------------------------------------


def test_a_user_is_created_from_the_claims() -> None:
    """The first request of a gate session creates the Django user, named by ``sub``, with
    the verified email and the given and family names, linked to the provider identity."""
    from oakid_gate.django.models import Identity

    me = whoami(signed_in(ALICE))
    assert me["username"] == "u-alice"
    assert (me["email"], me["first_name"], me["last_name"]) == (
        "alice@example.test",
        "Alice",
        "Admin",
    )
    assert (me["is_staff"], me["is_superuser"], me["groups"]) == (False, False, [])
    assert me["gate_user"] == "u-alice" and me["access_token"] == "oakid-gate-test-access-token"
    user = user_model().objects.get(username="u-alice")
    assert not user.has_usable_password()
    assert Identity.objects.get(user=user).subject == "u-alice"
    assert Identity.objects.get(user=user).issuer == GATE_SETTINGS["issuer"]


def test_the_user_claim_names_the_user() -> None:
    """With ``user_claim="email"`` the user name is the (verified) email."""
    with override_settings(OAKID=oakid(user_claim="email")):
        assert whoami(signed_in(ALICE))["username"] == "alice@example.test"


def test_an_unverified_email_is_not_the_users() -> None:
    """An email the provider marks unverified never reaches ``user.email``."""
    me = whoami(signed_in({**CAROL, "email_verified": False}))
    assert me["email"] == ""


def test_changed_claims_update_the_user_without_a_new_django_session() -> None:
    """When the gate re-reads the claims, the next request updates the Django user; its
    Django session stays (no new sign-in)."""
    from dataclasses import replace

    from oakid_gate.django import gate_adapter

    client = signed_in(ALICE)
    whoami(client)
    django_session = client.cookies["sessionid"].value
    adapter = gate_adapter()
    key = adapter.gate.parts.session_key(client.cookies["oakid_session"].value)
    session = adapter.store.get_session(key)
    assert session is not None
    claims = {**session.claims, "email": "alice@new.test", "family_name": "Again"}
    adapter.store.put_session(key, replace(session, claims=claims), 3600)
    me = whoami(client)
    assert (me["email"], me["last_name"]) == ("alice@new.test", "Again")
    assert client.cookies["sessionid"].value == django_session


def test_a_new_claim_name_renames_the_linked_user() -> None:
    """The link is the provider identity, not the name: a user whose ``user_claim``
    changes keeps their Django user, renamed."""
    with override_settings(OAKID=oakid(user_claim="email")):
        first = whoami(signed_in(ALICE))
        again = whoami(signed_in({**ALICE, "email": "alice@moved.test"}))
    assert (first["username"], again["username"]) == ("alice@example.test", "alice@moved.test")
    assert user_model().objects.count() == 1


# -- groups and flags ------------------------------------------------------------------


def test_groups_follow_the_claim_when_asked() -> None:
    """``sync_groups: True``: the Django groups become the claim's, created when missing,
    and follow it when it changes."""
    with override_settings(OAKID=oakid(sync_groups=True)):
        assert whoami(signed_in(ALICE))["groups"] == ["admins", "staff"]
        assert whoami(signed_in({**ALICE, "groups": ["editors"]}))["groups"] == ["editors"]


def test_groups_are_left_alone_unless_asked() -> None:
    """Without ``sync_groups`` the claim creates no group and the user joins none."""
    from django.contrib.auth.models import Group

    assert whoami(signed_in(ALICE))["groups"] == []
    assert not Group.objects.exists()


def test_only_the_listed_groups_follow_the_claim() -> None:
    """``sync_groups: [...]``: those groups follow the claim; a group an administrator
    gave the user stays, and a claimed group outside the list is not created."""
    from django.contrib.auth.models import Group

    with override_settings(OAKID=oakid(sync_groups=["staff", "editors"])):
        whoami(signed_in(ALICE))
        user = user_model().objects.get(username="u-alice")
        user.groups.add(Group.objects.create(name="local"))
        me = whoami(signed_in({**ALICE, "groups": ["admins", "editors"]}))
    assert me["groups"] == ["editors", "local"]
    assert not Group.objects.filter(name="admins").exists()


def test_staff_and_superuser_follow_the_named_groups() -> None:
    """``staff_groups`` / ``superuser_groups``: the flags follow the groups both ways."""
    with override_settings(OAKID=oakid(staff_groups=["staff"], superuser_groups=["admins"])):
        alice, bob, carol = (whoami(signed_in(c)) for c in (ALICE, BOB, CAROL))
        bob_later = whoami(signed_in({**BOB, "groups": []}))
    assert (alice["is_staff"], alice["is_superuser"]) == (True, True)
    assert (bob["is_staff"], bob["is_superuser"]) == (True, False)
    assert (carol["is_staff"], carol["is_superuser"]) == (False, False)
    assert (bob_later["is_staff"], bob_later["is_superuser"]) == (False, False)


def test_a_superuser_group_makes_staff_too() -> None:
    """A member of a superuser group is staff too (the admin needs it)."""
    with override_settings(OAKID=oakid(superuser_groups=["admins"])):
        me = whoami(signed_in(ALICE))
    assert (me["is_staff"], me["is_superuser"]) == (True, True)


def test_flags_are_left_alone_unless_asked() -> None:
    """Without ``staff_groups`` and ``superuser_groups`` an administrator's grant stays."""
    whoami(signed_in(BOB))
    user_model().objects.filter(username="u-bob").update(is_staff=True)
    assert whoami(signed_in(BOB))["is_staff"] is True


@pytest.mark.parametrize(
    "options", [{}, {"staff_groups": ["staff"], "superuser_groups": ["admins"]}]
)
def test_a_claim_cannot_make_a_superuser(options: dict[str, Any]) -> None:
    """Claims named like Django's flags are just claims: only the configured groups count."""
    claims = {**BOB, "is_superuser": True, "is_staff": True, "superuser": True, "groups": ["staff"]}
    with override_settings(OAKID=oakid(**options)):
        me = whoami(signed_in(claims))
    assert me["is_superuser"] is False
    assert me["is_staff"] is bool(options)


def test_a_group_claim_cannot_smuggle_a_superuser_group() -> None:
    """A group name that only looks like the superuser group (case, a zero-width space,
    a comma list) is not it."""
    groups = ["Admins", "adm\u200bins", "admins,staff", " admins"]
    with override_settings(OAKID=oakid(superuser_groups=["admins"], sync_groups=True)):
        me = whoami(signed_in({**BOB, "groups": groups}))
    assert me["is_superuser"] is False and me["is_staff"] is False
    assert me["groups"] == ["Admins"]


def test_the_groups_claim_setting_is_read() -> None:
    """``groups_claim`` names the claim the groups come from, as for the gate's rules."""
    with override_settings(OAKID=oakid(groups_claim="roles", staff_groups=["staff"])):
        me = whoami(signed_in({"sub": "u-dan", "roles": ["staff"], "groups": []}))
    assert me["is_staff"] is True


def test_permissions_come_from_the_synced_groups() -> None:
    """A permission of a Django group is the user's once the claim puts them in it."""
    from django.contrib.auth.models import Group, Permission

    editors = Group.objects.create(name="editors")
    editors.permissions.add(Permission.objects.get(codename="view_group"))
    with override_settings(OAKID=oakid(sync_groups=["editors"])):
        assert signed_in({**BOB, "groups": ["editors"]}).get("/perm").status_code == 200
        assert signed_in(CAROL).get("/perm").status_code == 403


# -- attacks ---------------------------------------------------------------------------


def test_a_local_account_is_not_taken_by_its_name() -> None:
    """A provider user whose ``sub`` is the name of a local account (``createsuperuser``)
    is refused with a 403, never signed in as it; nor by another letter case, nor by
    letters that Unicode (NFKC, as Django's own user names) folds into it."""
    user_model().objects.create_superuser("admin", "root@example.test", "pw")
    for sub in ("admin", "ADMIN", "\uff41\uff44\uff4d\uff49\uff4e", "\u1d2cdmin"):
        client = signed_in({"sub": sub, "groups": ["admins"]})
        response = client.get("/", HTTP_ACCEPT="text/html")
        assert response.status_code == 403
        assert b"belongs to another account" in response.content
    assert user_model().objects.count() == 1


def test_a_refused_user_is_not_signed_in_anywhere() -> None:
    """After the 403 the Django session holds no user: the public path is anonymous too."""
    user_model().objects.create_user("admin", "root@example.test", "pw")
    client = signed_in({"sub": "admin"})
    assert client.get("/").status_code == 403
    response = client.get("/public")
    assert response.status_code == 403  # the gate session is there: refused again, not anonymous
    assert "_auth_user_id" not in client.session


def test_a_rename_onto_another_account_is_refused() -> None:
    """A linked user whose new ``user_claim`` is another account's name is refused."""
    with override_settings(OAKID=oakid(user_claim="email")):
        whoami(signed_in(ALICE))
        whoami(signed_in(BOB))
        client = signed_in({**ALICE, "email": "bob@example.test"})
        assert client.get("/").status_code == 403
    assert set(user_model().objects.values_list("username", flat=True)) == {
        "alice@example.test",
        "bob@example.test",
    }


def test_a_deactivated_user_is_refused_at_once() -> None:
    """A user this site deactivated is refused at its next request, signed in or not."""
    client = signed_in(BOB)
    whoami(client)
    user_model().objects.filter(username="u-bob").update(is_active=False)
    assert client.get("/").status_code == 403
    assert signed_in(BOB).get("/").status_code == 403


@pytest.mark.parametrize("path", ["/public", "/"])
def test_a_forged_remote_user_is_no_one(path: str) -> None:
    """``REMOTE_USER`` (from a server) and identity headers (from a client) are removed:
    they never sign anyone in, even with a matching local account and RemoteUser habits."""
    user_model().objects.create_superuser("admin", "root@example.test", "pw")
    forged = {
        "REMOTE_USER": "admin",
        "HTTP_REMOTE_USER": "admin",
        "HTTP_X_FORWARDED_USER": "admin",
        "HTTP_X_AUTH_REQUEST_USER": "admin",
    }
    response = Client().get(path, **forged)
    if path == "/public":
        assert response.json() == {
            "authenticated": False,
            "gate_user": None,
            "access_token": None,
            "remote_user": None,
        }
    else:
        assert response.status_code == 401  # the gate's answer: no one is signed in
    me = whoami(signed_in(BOB), "/public")
    assert me["username"] == "u-bob" and me["remote_user"] is None


def test_the_admin_login_form_signs_no_one_in() -> None:
    """The admin's password form authenticates no one (the backend takes no passwords),
    and a Django session signed in by another backend counts for nothing without the gate."""
    user_model().objects.create_superuser("admin", "root@example.test", "pw")
    client = signed_in(CAROL)
    page = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "pw"})
    assert page.status_code == 200  # the form again, with its error
    assert whoami(client)["username"] == "u-carol"
    with override_settings(
        AUTHENTICATION_BACKENDS=[
            "oakid_gate.django.backends.OakIDBackend",
            "django.contrib.auth.backends.ModelBackend",
        ]
    ):
        sneaky = Client()
        assert sneaky.login(username="admin", password="pw")  # a Django session as admin
        assert whoami(sneaky, "/public")["authenticated"] is False
        assert sneaky.get("/admin/").status_code == 401
        sign_in_django(sneaky, CAROL)
        assert whoami(sneaky)["username"] == "u-carol"
