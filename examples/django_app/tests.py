"""The example project's tests: no provider, no network, only ``oakid_gate.testing``.

``sign_in_django`` gives Django's test client a real session of the gate for
the claims given; its requests then go through the real middleware, which
makes the Django user from those claims (groups, staff, superuser) as a real
sign-in would::

    python examples/django_app/manage.py test examples.django_app.tests
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client, TestCase, override_settings

from oakid_gate.testing.django import sign_in_django

#: the project's own OAKID, with stand-ins for what tests need no real value of
TEST_OAKID = {
    **settings.OAKID,
    "issuer": "https://id.invalid",  # never called
    "client_id": "example-tests",
    "client_secret": "example-tests",
    "secret": "example-tests-" + "x" * 32,
}

ALICE = {
    "sub": "u-alice",
    "name": "Alice Admin",
    "email": "alice@example.test",
    "groups": ["admins", "staff"],
}
BOB = {"sub": "u-bob", "email": "bob@example.test", "groups": ["staff"]}
CAROL = {"sub": "u-carol", "email": "carol@example.test", "groups": []}


def signed_in(claims: dict[str, object]) -> Client:
    client = Client()
    sign_in_django(client, claims)
    return client


@override_settings(OAKID=TEST_OAKID)
class AdminTests(TestCase):
    def test_staff_reach_the_admin(self) -> None:
        response = signed_in(BOB).get("/admin/")
        self.assertContains(response, "Site administration")

    def test_others_are_refused(self) -> None:
        client = signed_in(CAROL)
        response = client.get("/admin/")
        self.assertRedirects(response, "/admin/login/?next=/admin/", fetch_redirect_response=False)
        self.assertContains(client.get("/admin/login/?next=/admin/"), "not authorized")

    def test_a_superuser_changes_things(self) -> None:
        client = signed_in(ALICE)
        self.assertContains(client.get("/admin/auth/group/"), "staff")
        response = client.post("/admin/auth/group/add/", {"name": "editors"})
        self.assertEqual(response.status_code, 302)
        self.assertTrue(Group.objects.filter(name="editors").exists())

    def test_bob_cannot_change_groups(self) -> None:
        response = signed_in(BOB).get("/admin/auth/group/add/")
        self.assertEqual(response.status_code, 403)


@override_settings(OAKID=TEST_OAKID)
class HomeTests(TestCase):
    def test_the_home_page_shows_the_django_user(self) -> None:
        response = signed_in(ALICE).get("/")
        self.assertEqual(
            response.json(),
            {
                "username": "u-alice",
                "email": "alice@example.test",
                "name": "Alice Admin",
                "is_staff": True,
                "is_superuser": True,
                "groups": ["admins", "staff"],
            },
        )

    def test_without_a_session_the_gate_answers(self) -> None:
        self.assertEqual(Client().get("/").status_code, 401)

    def test_health_is_public(self) -> None:
        self.assertEqual(Client().get("/health").json(), {"ok": True, "signed_in": False})
        self.assertEqual(signed_in(BOB).get("/health").json(), {"ok": True, "signed_in": True})
