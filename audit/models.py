"""The audit trail: who read which sensitive detail (要配慮個人情報), when, from which device, why.

Append-only for the application: a database trigger refuses UPDATE and DELETE (django-pgtrigger).

Tamper-evident: each municipality's events form a hash chain (events without a municipality form
one more chain). A BEFORE INSERT trigger (migration 0002_hash_chained_events, plain SQL) gives
every new event its position, the previous event's hash and its own hash, whatever the insert
supplied, so every insert path is chained. `audit.chain.verify_chain` and `manage.py verify_audit`
recompute the chain with the same SQL function, ``audit_event_digest``.
"""

from typing import TypeAlias

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce


class AuditAction(models.TextChoices):
    READ = "read", "閲覧"
    EXPORT = "export", "出力"
    SHARE = "share", "共有"
    PURGE = "purge", "廃棄"  # 保存年限: records deleted when their retention ended (counts only)
    CHANGE = "change", "変更"  # a decision that changes what the field sees (a campaign started, a conflict resolved)


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
    # Set by the database trigger on insert (the values an insert supplies are replaced); the
    # db_default makes Django leave them to the database and read them back (RETURNING).
    chain_seq = models.BigIntegerField(
        db_default=0, editable=False, help_text="Position in its municipality's chain, from 1"
    )
    prev_hash = models.CharField(
        max_length=64, db_default="", editable=False, help_text="The previous event's hash (64 zeros for the first)"
    )
    hash = models.CharField(
        max_length=64, db_default="", editable=False, help_text="sha256 (hex) of audit_event_digest over this event"
    )

    class Meta:
        verbose_name = "監査ログ"
        verbose_name_plural = "監査ログ"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["municipality", "-at"], name="audit_municipality_at"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["actor", "-at"], name="audit_actor_at"),
        ]
        constraints = [
            # One position per chain; events without a municipality share chain 0. The index also
            # serves the trigger's "last event of this chain" lookup and the verifier's walk.
            models.UniqueConstraint(Coalesce("municipality", 0), "chain_seq", name="audit_chain_position"),
        ]
        triggers = [
            pgtrigger.Protect(name="audit_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username} {self.action} {self.object_type}:{self.object_id}"
