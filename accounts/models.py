"""Users (one municipality, one role) and their device tokens."""

import uuid

import pghistory
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.roles import Role


@pghistory.track(exclude=["password", "last_login"], model_name="UserHistory")
class User(AbstractUser):
    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.PROTECT, related_name="users", null=True, blank=True,
        help_text="Every user but a platform superuser belongs to exactly one municipality.",
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.SUPERVISOR)
    display_name = models.CharField(max_length=100, blank=True)
    partner_organization = models.ForeignKey(
        "visits.PartnerOrganization", on_delete=models.PROTECT, related_name="workers", null=True, blank=True,
        help_text="The corporation an outreach worker belongs to.",
    )
    neighborhoods = models.ManyToManyField(
        "neighborhoods.Neighborhood", blank=True, related_name="commissioners",
        help_text="The 自治会 a 民生委員 (commissioner) is responsible for.",
    )

    class Meta:
        verbose_name = "利用者"
        verbose_name_plural = "利用者"
        constraints = [
            models.CheckConstraint(
                condition=Q(municipality__isnull=False) | Q(is_superuser=True),
                name="user_belongs_to_municipality",
            ),
            models.CheckConstraint(
                condition=Q(role=Role.OUTREACH_WORKER, partner_organization__isnull=False)
                | (~Q(role=Role.OUTREACH_WORKER) & Q(partner_organization__isnull=True)),
                name="user_partner_only_for_workers",
            ),
            # The Django admin is the platform operators' tool: a municipal account is never staff.
            models.CheckConstraint(
                condition=Q(municipality__isnull=True) | Q(is_staff=False, is_superuser=False),
                name="user_municipal_not_staff",
                violation_error_message="A user of a municipality cannot be staff or superuser.",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username


class DeviceTokenQuerySet(models.QuerySet):
    def active(self) -> "DeviceTokenQuerySet":
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class DeviceToken(models.Model):
    """A device's API token. Only the SHA-256 of the token is stored; the token is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="device_tokens")
    name = models.CharField("device name", max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = DeviceTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "端末トークン"
        verbose_name_plural = "端末トークン"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="devicetoken_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
