"""The audit trail: who read which sensitive detail (要配慮個人情報), when, from which device, why.

Append-only for the application: a database trigger refuses UPDATE and DELETE (django-pgtrigger).
"""

from typing import TypeAlias

import pgtrigger
from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    READ = "read", "閲覧"
    EXPORT = "export", "出力"
    SHARE = "share", "共有"


class AuditEvent(models.Model):
    Action: TypeAlias = AuditAction

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+", null=True
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True)
    actor_username = models.CharField(max_length=150)
    actor_role = models.CharField(max_length=20, blank=True)
    device_token_id = models.UUIDField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.READ)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    basis = models.CharField(max_length=200, help_text="Why the actor may see it: role, assignment, consent …")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "監査ログ"
        verbose_name_plural = "監査ログ"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["municipality", "-at"], name="audit_municipality_at"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["actor", "-at"], name="audit_actor_at"),
        ]
        triggers = [
            pgtrigger.Protect(name="audit_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username} {self.action} {self.object_type}:{self.object_id}"
