"""The link of users to provider identities (:class:`~oakid_gate.django.models.Identity`)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

__all__ = ["Migration"]


class Migration(migrations.Migration):  # type: ignore[misc]
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Identity",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("issuer", models.CharField(max_length=255)),
                ("subject", models.CharField(help_text="the provider's sub claim", max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="oakid_identity",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "OpenID Connect identity",
                "verbose_name_plural": "OpenID Connect identities",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("issuer", "subject"), name="oakid_gate_one_user_per_sub"
                    )
                ],
            },
        ),
    ]
