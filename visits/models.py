"""Work at the door: partner corporations and their workers, survey campaigns (世帯訪問調査),
hearings, allocation of 自治会 to corporations, and the visit schedule."""

import uuid
from typing import TypeAlias

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.db.models import Q

from backend.db import change_seq_trigger


class PartnerOrganization(models.Model):
    """アウトリーチ受託法人: a corporation the municipality contracts for outreach visits."""

    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.PROTECT, related_name="partner_organizations"
    )
    code = models.SlugField(max_length=50)
    name = models.CharField(max_length=200)
    office = models.PointField(srid=4326, null=True, blank=True, help_text="Where the day's routes start and end.")
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=30, blank=True)
    contact_person = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "アウトリーチ受託法人"
        verbose_name_plural = "アウトリーチ受託法人"
        ordering = ["municipality_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "code"], name="partner_code_unique_per_municipality"),
        ]

    def __str__(self) -> str:
        return self.name

    def apply_demo_details(self, spec: dict) -> None:
        """Fill office and contact from a fixtures/…/partners.json entry (demo loading)."""
        from django.contrib.gis.geos import Point

        office = spec.get("office")
        self.office = Point(office["lon"], office["lat"], srid=4326) if office else None
        self.phone = spec.get("phone", "")
        self.save(update_fields=["office", "phone"])


class WorkerAvailability(models.Model):
    """When an outreach worker works: weekdays and hours. Days off are listed separately."""

    worker = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability")
    weekdays = ArrayField(
        models.PositiveSmallIntegerField(), default=list, blank=True,
        help_text="ISO weekdays worked (1 = Monday … 7 = Sunday); weekends and public holidays are never scheduled",
    )
    start_time = models.TimeField(default="09:00")
    end_time = models.TimeField(default="17:00")

    class Meta:
        verbose_name = "勤務可能日"
        verbose_name_plural = "勤務可能日"
        constraints = [models.CheckConstraint(condition=Q(start_time__lt=models.F("end_time")), name="availability_hours")]

    def __str__(self) -> str:
        return f"{self.worker}: {self.weekdays} {self.start_time}-{self.end_time}"


class WorkerDayOff(models.Model):
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="days_off")
    date = models.DateField()
    reason = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "休み"
        verbose_name_plural = "休み"
        constraints = [models.UniqueConstraint(fields=["worker", "date"], name="day_off_unique")]

    def __str__(self) -> str:
        return f"{self.worker} {self.date}"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "準備中"
    RUNNING = "running", "実施中"
    CLOSED = "closed", "終了"


class Campaign(models.Model):
    """A 世帯訪問調査 campaign: a fiscal year's visits to the households of an ordered list of 自治会."""

    Status: TypeAlias = CampaignStatus

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="campaigns")
    fiscal_year = models.PositiveSmallIntegerField(help_text="年度 (April–March), e.g. 2026 for 令和8年度")
    name = models.CharField(max_length=200)
    start_date = models.DateField()
    end_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    visits_per_worker_day = models.PositiveSmallIntegerField(default=12)
    max_attempts = models.PositiveSmallIntegerField(default=3, help_text="Attempts before a leaflet is left")
    time_bands = ArrayField(models.CharField(max_length=10), default=list, help_text="e.g. ['am', 'pm']")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "世帯訪問調査"
        verbose_name_plural = "世帯訪問調査"
        ordering = ["municipality_id", "-fiscal_year", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(start_date__lte=models.F("end_date")), name="campaign_dates_ordered"),
            models.CheckConstraint(condition=Q(visits_per_worker_day__gte=1), name="campaign_capacity_positive"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="campaign_attempts_positive"),
            models.UniqueConstraint(fields=["municipality", "fiscal_year", "name"], name="campaign_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.fiscal_year} {self.name}"


class CampaignNeighborhood(models.Model):
    """A 自治会 targeted by a campaign, in the order they are visited."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="targets")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["campaign_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "neighborhood"], name="campaign_target_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.position}. {self.neighborhood}"


class Allocation(models.Model):
    """A 自治会 of a campaign handed to a partner corporation: its workers visit (and may see) the
    households there while the campaign is running (実施中)."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="allocations")
    partner_organization = models.ForeignKey(PartnerOrganization, on_delete=models.PROTECT, related_name="allocations")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.PROTECT, related_name="allocations")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "担当割当"
        verbose_name_plural = "担当割当"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "neighborhood"], name="allocation_one_partner_per_neighborhood"),
        ]
        indexes = [
            models.Index(fields=["municipality", "partner_organization"], name="allocation_partner"),
            models.Index(fields=["neighborhood"], name="allocation_neighborhood"),
        ]

    def __str__(self) -> str:
        return f"{self.neighborhood} → {self.partner_organization}"


class Hearing(models.Model):
    """ヒアリング with the 自治会 chair and 民生委員 before a 自治会 is visited."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="hearings")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.PROTECT, related_name="hearings")
    held_on = models.DateField()
    attendees = models.JSONField(default=list, blank=True, help_text='[{"role": "自治会長", "name": "…"}]')
    notes = models.TextField(blank=True, help_text="要配慮個人情報")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "ヒアリング"
        verbose_name_plural = "ヒアリング"
        ordering = ["campaign_id", "held_on"]

    def __str__(self) -> str:
        return f"{self.neighborhood} {self.held_on}"


class CampaignHouseholdState(models.TextChoices):
    PENDING = "pending", "未訪問"
    SCHEDULED = "scheduled", "予定あり"
    MET = "met", "面談"
    REFUSED = "refused", "拒否"
    MOVED = "moved", "転居"
    VACANT = "vacant", "空き家"
    LEAFLET_DUE = "leaflet_due", "チラシ投函予定"
    LEAFLET_LEFT = "leaflet_left", "チラシ投函済"


class CampaignHousehold(models.Model):
    """A household's state in a campaign: priority from a hearing, attempts so far, outcome."""

    State: TypeAlias = CampaignHouseholdState

    FINAL_STATES = ("met", "refused", "moved", "vacant", "leaflet_left")

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="households")
    household = models.ForeignKey("neighborhoods.Household", on_delete=models.PROTECT, related_name="campaign_states")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.PROTECT, related_name="+", null=True)
    state = models.CharField(max_length=15, choices=State.choices, default=State.PENDING)
    priority = models.BooleanField(default=False)
    priority_reason = models.CharField(max_length=300, blank=True, help_text="要配慮個人情報")
    hearing = models.ForeignKey(Hearing, on_delete=models.SET_NULL, null=True, blank=True, related_name="priorities")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_date = models.DateField(null=True, blank=True)
    last_attempt_band = models.CharField(max_length=10, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Written by the database only (triggers of migration 0008), from the visit records, the last
    # attempt and updated_at: what a save sends is replaced.
    finished_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When the campaign finished it (kept by the database): NULL until the state is final",
    )

    class Meta:
        verbose_name = "調査対象世帯"
        verbose_name_plural = "調査対象世帯"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "household"], name="campaign_household_unique"),
        ]
        indexes = [
            models.Index(fields=["campaign", "neighborhood", "state"], name="campaign_household_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.household_id} {self.state}"


class VisitOutcome(models.TextChoices):
    MET = "met", "面談"
    ABSENT = "absent", "不在"
    REFUSED = "refused", "拒否"
    MOVED = "moved", "転居"
    VACANT = "vacant", "空き家"
    LEAFLET_LEFT = "leaflet_left", "チラシ投函"


class ScheduledVisitStatus(models.TextChoices):
    PLANNED = "planned", "予定"
    ISSUED = "issued", "配布済"  # handed to the worker's device: re-planning keeps it
    DONE = "done", "実施"
    ABSENT = "absent", "不在"
    CANCELLED = "cancelled", "取消"


@pghistory.track(exclude=["change_seq"], model_name="ScheduledVisitHistory")
class ScheduledVisit(models.Model):
    """One planned visit: a household on a worker's day, with its place in the day's route."""

    Status: TypeAlias = ScheduledVisitStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="scheduled_visits")
    household = models.ForeignKey("neighborhoods.Household", on_delete=models.PROTECT, related_name="scheduled_visits")
    neighborhood = models.ForeignKey("neighborhoods.Neighborhood", on_delete=models.PROTECT, related_name="+", null=True)
    partner_organization = models.ForeignKey(PartnerOrganization, on_delete=models.PROTECT, related_name="+")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="scheduled_visits")
    date = models.DateField()
    time_band = models.CharField(max_length=10, blank=True)
    route_order = models.PositiveSmallIntegerField()
    attempt = models.PositiveSmallIntegerField(default=1)
    priority = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    outcome = models.CharField(
        max_length=15, blank=True, choices=VisitOutcome.choices,
        help_text="What happened at the door, once recorded (a correction is an OutcomeCorrection)",
    )
    leg_m = models.PositiveIntegerField(default=0, help_text="Straight-line metres from the previous stop")
    version = models.PositiveIntegerField(default=1)
    change_seq = models.BigIntegerField(default=0, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "訪問予定"
        verbose_name_plural = "訪問予定"
        ordering = ["date", "worker_id", "route_order"]
        indexes = [
            models.Index(fields=["worker", "date"], name="scheduled_visit_worker_date"),
            models.Index(fields=["campaign", "status"], name="scheduled_visit_campaign"),
            models.Index(fields=["partner_organization", "date"], name="scheduled_visit_partner_date"),
            # The newest change of one municipality (coverage freshness, tile versions): see Household.
            models.Index(fields=["municipality", "change_seq"], name="scheduled_visit_seq"),
        ]
        constraints = [
            # One live visit per household and campaign at a time.
            models.UniqueConstraint(
                fields=["campaign", "household"], condition=Q(status__in=["planned", "issued"]),
                name="scheduled_visit_one_open_per_household",
            ),
        ]
        triggers = [change_seq_trigger("scheduled_visit_change_seq")]

    def __str__(self) -> str:
        return f"{self.date} {self.worker_id} #{self.route_order} {self.household_id}"


class OutcomeCorrection(models.Model):
    """A recorded outcome of a scheduled visit corrected by a person, with why: the visit carries the
    corrected outcome, this row what it was, who changed it and why (never silently)."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    scheduled_visit = models.ForeignKey(ScheduledVisit, on_delete=models.CASCADE, related_name="corrections")
    from_outcome = models.CharField(max_length=15, choices=VisitOutcome.choices)
    to_outcome = models.CharField(max_length=15, choices=VisitOutcome.choices)
    reason = models.TextField()
    visit_record = models.ForeignKey(
        "VisitRecord", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The superseding visit record, when the correction came from a device",
    )
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "訪問結果の訂正"
        verbose_name_plural = "訪問結果の訂正"
        ordering = ["scheduled_visit_id", "at"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="outcome_correction_has_reason"),
            models.CheckConstraint(condition=~Q(from_outcome=models.F("to_outcome")), name="outcome_correction_changes"),
        ]

    def __str__(self) -> str:
        return f"{self.scheduled_visit_id}: {self.from_outcome} → {self.to_outcome}"


class PlanningJobKind(models.TextChoices):
    GENERATE = "generate", "生成"
    REPLAN = "replan", "再計画"


class PlanningJobStatus(models.TextChoices):
    QUEUED = "queued", "待機"
    RUNNING = "running", "実行中"
    DONE = "done", "完了"
    FAILED = "failed", "失敗"


class PlanningJob(models.Model):
    """A schedule generation or re-planning run (django-q2), with progress for the API."""

    Kind: TypeAlias = PlanningJobKind
    Status: TypeAlias = PlanningJobStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="planning_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100")
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(default=dict, blank=True)
    from_date = models.DateField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "計画ジョブ"
        verbose_name_plural = "計画ジョブ"
        ordering = ["-created_at"]
        constraints = [
            # At most one active planning job per campaign: a concurrent request fails on this.
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(status__in=["queued", "running"]), name="planning_job_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.campaign_id} {self.status} {self.progress}%"


# --- field records and offline sync ----------------------------------------------------------

class SurveyForm(models.Model):
    """A versioned survey form definition (questions, types, choices, required). Devices pull the
    published versions; answers are validated against the version they were made with."""

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    key = models.SlugField(max_length=50, default="household-visit")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    definition = models.JSONField(help_text='{"questions": [{"id", "type", "label", "choices", "required"}]}')
    published = models.BooleanField(default=True)
    change_seq = models.BigIntegerField(default=0, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "調査票"
        verbose_name_plural = "調査票"
        ordering = ["municipality_id", "key", "-version"]
        constraints = [models.UniqueConstraint(fields=["municipality", "key", "version"], name="form_version_unique")]
        triggers = [change_seq_trigger("form_change_seq")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class Device(models.Model):
    """A tablet or phone registered for sync, tied to the device token it registered with."""

    id = models.UUIDField(primary_key=True, help_text="Made by the device")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    token = models.ForeignKey("accounts.DeviceToken", on_delete=models.SET_NULL, null=True, related_name="devices")
    name = models.CharField(max_length=100, blank=True)
    platform = models.CharField(max_length=50, blank=True)
    registered_at = models.DateTimeField(auto_now_add=True)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_pull_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "端末"
        verbose_name_plural = "端末"

    def __str__(self) -> str:
        return f"{self.name or self.id} ({self.user})"


class SyncOperation(models.Model):
    """One pushed operation, applied at most once: its op_id is the primary key, so a retry or a
    parallel copy of the same op meets the unique index instead of a read-then-write race."""

    # The claim log is written by the sync engine alone, 100 to 500 rows per push, for a device
    # and user it has just checked and a municipality row-level security holds it to; no
    # municipality, user or device is ever deleted (they are deactivated or revoked), and Django's
    # PROTECT still refuses an ORM delete of one with claims. So these references are not
    # checked again by the database at every commit (3 deferred checks per op: a tenth of a
    # push's time). The device's own index is syncop_device's first column.
    op_id = models.UUIDField(primary_key=True)
    municipality = models.ForeignKey(
        "neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, related_name="operations", db_constraint=False, db_index=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    kind = models.CharField(max_length=40)
    payload_sha256 = models.CharField(max_length=64)
    result = models.JSONField(default=dict)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "同期操作"
        verbose_name_plural = "同期操作"
        indexes = [models.Index(fields=["device", "-applied_at"], name="syncop_device")]

    def __str__(self) -> str:
        return f"{self.kind} {self.op_id}"


class DeviceHolding(models.Model):
    """What a device holds (as far as the server knows): the pull compares it with what the user
    may see now, to send changes and to tell the device what to purge."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="holdings")
    kind = models.CharField(max_length=30)
    object_id = models.CharField(max_length=64)
    seq = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "kind", "object_id"], name="holding_unique")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.kind}:{self.object_id}@{self.seq}"


class PullPage(models.Model):
    """A page handed to a device. Its id is the page's next_cursor: presenting it confirms the
    page (its items join the device's holdings, its purges leave), so a lost response is simply
    pulled again with the previous cursor and gives the same page."""

    id = models.CharField(primary_key=True, max_length=64)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="pull_pages")
    items = models.JSONField(default=list, help_text="[[kind, id, seq], …]")
    purges = models.JSONField(default=list, help_text="[[kind, id], …]")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["device", "created_at"], name="pullpage_device")]


class VisitRecord(models.Model):
    """What happened at the door: an append-only fact made on the device. A correction is a new
    record that supersedes an earlier one; the database refuses UPDATE and DELETE."""

    Outcome: TypeAlias = VisitOutcome

    id = models.UUIDField(primary_key=True, help_text="Made by the device")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey("neighborhoods.Household", on_delete=models.PROTECT, related_name="visit_records")
    scheduled_visit = models.ForeignKey(
        ScheduledVisit, on_delete=models.PROTECT, null=True, blank=True, related_name="records"
    )
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="visit_records")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, null=True, related_name="+")
    # The claim is written by the same transaction, just before (see SyncOperation): not checked again.
    op = models.OneToOneField(
        SyncOperation, on_delete=models.PROTECT, null=True, related_name="visit_record", db_constraint=False
    )
    outcome = models.CharField(max_length=15, choices=Outcome.choices)
    met_person = models.CharField(max_length=200, blank=True, help_text="Who was met (要配慮個人情報)")
    form = models.ForeignKey(SurveyForm, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    answers = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True, help_text="要配慮個人情報")
    concerns = ArrayField(models.CharField(max_length=30), default=list, blank=True)
    visited_at = models.DateTimeField(help_text="The device's clock, as reported")
    received_at = models.DateTimeField(auto_now_add=True)
    location = models.PointField(srid=4326, null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True)
    distance_m = models.FloatField(null=True, blank=True, help_text="From the household's location")
    location_implausible = models.BooleanField(default=False)
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )

    class Meta:
        verbose_name = "訪問記録"
        verbose_name_plural = "訪問記録"
        ordering = ["-visited_at"]
        indexes = [
            models.Index(fields=["municipality", "household", "-visited_at"], name="visitrecord_household"),
            models.Index(fields=["worker", "-visited_at"], name="visitrecord_worker"),
        ]
        triggers = [
            pgtrigger.Protect(name="visitrecord_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.visited_at:%Y-%m-%d} {self.household_id} {self.outcome}"


class PhotoStatus(models.TextChoices):
    RECEIVED = "received", "受信"
    READY = "ready", "処理済"
    FAILED = "failed", "失敗"


class Photo(models.Model):
    """A photo taken at a visit, keyed by the device's UUID. The upload is checked by its bytes and
    kept out of reach until a job has rebuilt it without metadata; served only through the API."""

    Status: TypeAlias = PhotoStatus

    id = models.UUIDField(primary_key=True, help_text="Made by the device")
    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    visit_record = models.ForeignKey(VisitRecord, on_delete=models.PROTECT, related_name="photos")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64, help_text="Of the uploaded bytes (idempotent re-uploads)")
    size_bytes = models.PositiveIntegerField()
    source_format = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "写真"
        verbose_name_plural = "写真"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class ConflictOutcome(models.TextChoices):
    """How a coordinator resolved an edit conflict."""

    KEPT_SERVER = "kept_server", "サーバーの内容を維持"
    APPLIED_DEVICE = "applied_device", "端末の変更を採用"
    MERGED = "merged", "項目ごとに選択"


class EditConflict(models.Model):
    """An offline edit based on a version the server has moved past. Both versions are kept for a
    person to resolve; nothing is overwritten silently."""

    Outcome: TypeAlias = ConflictOutcome

    municipality = models.ForeignKey("neighborhoods.Municipality", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=30)
    object_id = models.CharField(max_length=64)
    base_version = models.PositiveIntegerField()
    server_version = models.PositiveIntegerField()
    proposed = models.JSONField(help_text="The device's changes")
    server_copy = models.JSONField(help_text="The server's record when the edit arrived")
    op = models.OneToOneField(SyncOperation, on_delete=models.PROTECT, related_name="conflict")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    resolution = models.CharField(max_length=20, blank=True, choices=ConflictOutcome.choices, help_text="kept_server | applied_device | merged")
    resolution_note = models.TextField(blank=True, help_text="The coordinator's reason")
    applied_fields = models.JSONField(default=list, blank=True, help_text="The device's fields applied to the household")
    resolved_version = models.PositiveIntegerField(null=True, blank=True, help_text="The household's version after the resolution")

    class Meta:
        verbose_name = "編集の競合"
        verbose_name_plural = "編集の競合"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["municipality", "resolved_at"], name="conflict_open")]
        constraints = [
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True, resolution="")
                | Q(resolved_at__isnull=False, resolution__in=["kept_server", "applied_device", "merged"]),
                name="conflict_resolved_with_a_resolution",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.object_id} v{self.base_version}→v{self.server_version}"
