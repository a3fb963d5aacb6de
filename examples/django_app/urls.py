"""The example project's URLs: a page for any signed-in user, the admin, a public health
check, and Django's sign-in and sign-out URLs sent to the gate's."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from oakid_gate.django import views as oakid

from . import views

urlpatterns = [
    path("", views.home),
    path("health", views.health),  # OAKID["public_paths"]
    path("accounts/login/", oakid.sign_in),  # LOGIN_URL: into the gate's sign-in
    path("admin/logout/", oakid.sign_out),  # the admin's "Log out": the gate's sign-out
    path("admin/", admin.site.urls),
]
